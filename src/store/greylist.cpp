// Greylisting triplets: keys, the pass rule, and the shared env.
#include "mxguard/store/greylist.hpp"

#include <sys/stat.h>

#include <fmt/format.h>

#include "mxguard/core/strings.hpp"

namespace mxguard::store {

namespace {

constexpr uint8_t kGreylistVersion = 1;
constexpr size_t kGreylistMapSize = size_t{4} << 30;

std::string encode(const GreylistSeen& s) {
  std::string out(1, static_cast<char>(kGreylistVersion));
  for (int64_t v : {s.first_ms, s.last_ms})
    for (int i = 0; i < 8; ++i) out += static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff);
  return out;
}

std::optional<GreylistSeen> decode(std::string_view b) {
  if (b.size() != 17 || static_cast<uint8_t>(b[0]) != kGreylistVersion) return std::nullopt;
  int64_t v[2] = {0, 0};
  for (int f = 0; f < 2; ++f) {
    uint64_t x = 0;
    for (int i = 7; i >= 0; --i) x = (x << 8) | static_cast<uint8_t>(b[1 + f * 8 + i]);
    v[f] = static_cast<int64_t>(x);
  }
  return GreylistSeen{v[0], v[1]};
}

}  // namespace

std::string greylist_key(const IpAddress& client, std::string_view sender, std::string_view recipient) {
  // Big senders retry from another address of the same network.
  IpAddress net = client;
  size_t keep = client.v6 ? 8 : 3;
  for (size_t i = keep; i < net.bytes.size(); ++i) net.bytes[i] = 0;
  return fmt::format("{}/{}|{}|{}", net.to_string(), client.v6 ? 64 : 24, to_lower(sender), to_lower(recipient));
}

bool greylist_passes(const std::optional<GreylistSeen>& seen, int64_t now_ms, int64_t min_delay_ms,
                     int64_t window_ms) {
  if (!seen) return false;
  if (now_ms - seen->last_ms > window_ms) return false;  // forgotten: starts over
  return now_ms - seen->first_ms >= min_delay_ms;
}

Result<std::unique_ptr<GreylistStore>> GreylistStore::open(const std::string& state_dir) {
  if (::mkdir(state_dir.c_str(), 0750) != 0 && errno != EEXIST)
    return Error{fmt::format("cannot create state directory {}", state_dir)};
  auto env = Env::open(state_dir + "/greylist", 2, kGreylistMapSize, MDB_NOSYNC);
  if (!env) return Error{env.error()};
  auto dbi = env->open_db("triplets");
  if (!dbi) return Error{dbi.error()};
  return std::unique_ptr<GreylistStore>(new GreylistStore(std::move(*env), *dbi));
}

Result<std::optional<GreylistSeen>> GreylistStore::lookup(std::string_view key) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  auto v = txn->get(dbi_, key);
  if (!v) return Error{v.error()};
  if (!*v) return std::optional<GreylistSeen>{};
  return decode(**v);
}

Status GreylistStore::record(const std::vector<std::pair<std::string, int64_t>>& seen, int64_t window_ms) {
  if (seen.empty()) return {};
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  for (const auto& [key, at] : seen) {
    auto v = txn->get(dbi_, key);
    if (!v) return Error{v.error()};
    GreylistSeen s{at, at};
    if (*v) {
      if (auto old = decode(**v); old && at - old->last_ms <= window_ms) s.first_ms = std::min(old->first_ms, at);
    }
    if (auto st = txn->put(dbi_, key, encode(s)); !st) return st;
  }
  return txn->commit();
}

}  // namespace mxguard::store
