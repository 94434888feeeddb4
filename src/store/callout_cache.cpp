// Callout cache records: a version byte, the answer, the expiry (ms, little endian).
#include "mxguard/store/callout_cache.hpp"

#include <sys/stat.h>

#include <cerrno>

#include <fmt/format.h>

namespace mxguard::store {

namespace {
constexpr size_t kCalloutMapSize = size_t{1} << 30;
constexpr uint8_t kCalloutVersion = 1;
}  // namespace

Result<std::unique_ptr<CalloutCache>> CalloutCache::open(const std::string& state_dir) {
  if (::mkdir(state_dir.c_str(), 0750) != 0 && errno != EEXIST)
    return Error{fmt::format("cannot create state directory {}", state_dir)};
  auto env = Env::open(state_dir + "/callout", 2, kCalloutMapSize, MDB_NOSYNC);
  if (!env) return Error{env.error()};
  auto dbi = env->open_db("answers");
  if (!dbi) return Error{dbi.error()};
  return std::unique_ptr<CalloutCache>(new CalloutCache(std::move(*env), *dbi));
}

Result<std::optional<bool>> CalloutCache::lookup(std::string_view address, int64_t now_ms) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  auto v = txn->get(dbi_, address);
  if (!v) return Error{v.error()};
  if (!*v || (*v)->size() != 10 || static_cast<uint8_t>((**v)[0]) != kCalloutVersion) return std::optional<bool>();
  uint64_t expires = 0;
  for (int i = 0; i < 8; ++i) expires |= uint64_t{static_cast<uint8_t>((**v)[2 + i])} << (8 * i);
  if (static_cast<int64_t>(expires) <= now_ms) return std::optional<bool>();
  return std::optional<bool>((**v)[1] != 0);
}

Status CalloutCache::store(std::string_view address, bool exists, int64_t expires_ms) {
  if (address.empty() || address.size() > 500) return Error{"callout cache: address too long"};
  std::string v;
  v.push_back(static_cast<char>(kCalloutVersion));
  v.push_back(exists ? 1 : 0);
  for (int i = 0; i < 8; ++i) v.push_back(static_cast<char>((static_cast<uint64_t>(expires_ms) >> (8 * i)) & 0xff));
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  if (auto s = txn->put(dbi_, address, v); !s) return s;
  return txn->commit();
}

}  // namespace mxguard::store
