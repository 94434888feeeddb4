#include "mxguard/store/tracking.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "mxguard/store/spool.hpp"

namespace mxguard::store {
namespace {

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_str(std::string& out, std::string_view s) {
  uint32_t n = static_cast<uint32_t>(s.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out.append(s);
}

struct Reader {
  std::string_view in;
  bool ok = true;
  uint64_t u(size_t width) {
    if (in.size() < width) { ok = false; return 0; }
    uint64_t v = 0;
    for (size_t i = 0; i < width; ++i) v |= uint64_t{static_cast<uint8_t>(in[i])} << (8 * i);
    in.remove_prefix(width);
    return v;
  }
  std::string str() {
    uint64_t n = u(4);
    if (!ok || in.size() < n) { ok = false; return {}; }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string encode_event(const TrackEvent& e) {
  std::string out;
  out.push_back(static_cast<char>(kTrackEventVersion));
  put_u64(out, static_cast<uint64_t>(e.time_ms));
  put_u64(out, e.shard);
  put_u64(out, e.session);
  put_u64(out, e.code);
  for (std::string_view s : {std::string_view(e.client_ip), std::string_view(e.helo), std::string_view(e.sender),
                             std::string_view(e.decision), std::string_view(e.reason),
                             std::string_view(e.message_id), std::string_view(e.ref_id)})
    put_str(out, s);
  put_u64(out, e.recipients.size());
  for (const auto& r : e.recipients) put_str(out, r);
  return out;
}

std::optional<TrackEvent> decode_event(std::string_view value) {
  if (value.empty() || static_cast<uint8_t>(value[0]) != kTrackEventVersion) return std::nullopt;
  Reader r{value.substr(1)};
  TrackEvent e;
  e.time_ms = static_cast<int64_t>(r.u(8));
  e.shard = static_cast<unsigned>(r.u(8));
  e.session = r.u(8);
  e.code = static_cast<unsigned>(r.u(8));
  for (std::string* s : {&e.client_ip, &e.helo, &e.sender, &e.decision, &e.reason, &e.message_id, &e.ref_id})
    *s = r.str();
  uint64_t n = r.u(8);
  // Each recipient needs at least its 4-byte length: a bogus count cannot allocate.
  if (!r.ok || n > r.in.size() / 4) return std::nullopt;
  for (uint64_t i = 0; i < n && r.ok; ++i) e.recipients.push_back(r.str());
  if (!r.ok || !r.in.empty()) return std::nullopt;
  return e;
}

std::string event_key(int64_t time_ms, uint64_t seq) {
  std::string k;
  uint64_t t = static_cast<uint64_t>(time_ms);
  for (int i = 7; i >= 0; --i) k.push_back(static_cast<char>((t >> (8 * i)) & 0xff));
  for (int i = 7; i >= 0; --i) k.push_back(static_cast<char>((seq >> (8 * i)) & 0xff));
  return k;
}

std::optional<int64_t> event_key_time(std::string_view key) {
  if (key.size() != 16) return std::nullopt;
  uint64_t t = 0;
  for (int i = 0; i < 8; ++i) t = (t << 8) | static_cast<uint8_t>(key[i]);
  return static_cast<int64_t>(t);
}

namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
std::string index_prefix(char tag, std::string_view value) {
  std::string k{tag, ':'};
  k += lower(value);
  k.push_back('\0');
  return k;
}
}  // namespace

std::vector<std::string> event_index_keys(const TrackEvent& e, std::string_view key) {
  std::vector<std::string> out;
  auto add = [&](char tag, std::string_view v) {
    if (!v.empty()) out.push_back(index_prefix(tag, v) + std::string(key));
  };
  add('s', e.sender);
  for (const auto& r : e.recipients) add('r', r);
  add('i', e.client_ip);
  add('m', e.message_id);
  add('f', e.ref_id);
  if (e.session) add('n', std::to_string(e.session));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string filter_index_prefix(const TrackFilter& f) {
  if (!f.message_id.empty()) return index_prefix('m', f.message_id);
  if (!f.ref_id.empty()) return index_prefix('f', f.ref_id);
  if (f.session) return index_prefix('n', std::to_string(*f.session));
  if (!f.sender.empty()) return index_prefix('s', f.sender);
  if (!f.recipient.empty()) return index_prefix('r', f.recipient);
  if (!f.client_ip.empty()) return index_prefix('i', f.client_ip);
  return {};
}

Status Spool::add_events_in(Txn& txn, const std::vector<TrackEvent>& events) {
  for (const TrackEvent& e : events) {
    // Two writers (the engine's storage writer, a console action) may pick the
    // same millisecond: take the next free sequence number.
    std::string key;
    for (uint64_t seq = 0;; ++seq) {
      key = event_key(e.time_ms, seq);
      auto got = txn.get(dbs_.events, key);
      if (!got) return Error{got.error()};
      if (!*got) break;
    }
    if (auto st = txn.put(dbs_.events, key, encode_event(e)); !st) return st;
    for (const auto& ik : event_index_keys(e, key))
      if (auto st = txn.put(dbs_.event_index, ik, std::string_view("", 0)); !st) return st;
  }
  return {};
}

Status Spool::add_events(const std::vector<TrackEvent>& events) {
  if (events.empty()) return {};
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  if (auto st = add_events_in(*txn, events); !st) return st;
  return txn->commit();
}

Status Spool::find_events(const TrackFilter& f, const std::function<void(const TrackEvent&)>& fn) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  auto visit = [&](std::string_view value) {
    auto e = decode_event(value);
    if (!e) return;  // a newer version or a damaged record: skipped, never fatal
    if (f.session && e->session != *f.session) return;
    if (f.matches(*e)) fn(*e);
  };
  std::string prefix = filter_index_prefix(f);
  if (prefix.empty()) {
    Cursor cur(*txn, dbs_.events);
    for (bool ok = cur.seek(f.since_ms ? event_key(*f.since_ms, 0) : std::string()); ok; ok = cur.next()) {
      auto t = event_key_time(cur.key());
      if (f.until_ms && t && *t > *f.until_ms) break;
      visit(cur.value());
    }
    return {};
  }
  Cursor cur(*txn, dbs_.event_index);
  for (bool ok = cur.seek(prefix); ok && cur.key().starts_with(prefix); ok = cur.next()) {
    std::string_view ek = cur.key().substr(prefix.size());
    auto v = txn->get(dbs_.events, ek);
    if (!v) return Error{v.error()};
    if (*v) visit(**v);
  }
  return {};
}

Result<size_t> Spool::purge_events(int64_t before_ms, size_t max) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  std::vector<std::pair<std::string, std::string>> doomed;
  {
    Cursor cur(*txn, dbs_.events);
    for (bool ok = cur.seek(""); ok && doomed.size() < max; ok = cur.next()) {
      auto t = event_key_time(cur.key());
      if (t && *t >= before_ms) break;
      doomed.emplace_back(cur.key(), cur.value());
    }
  }
  for (const auto& [key, value] : doomed) {
    if (auto e = decode_event(value))
      for (const auto& ik : event_index_keys(*e, key))
        if (auto d = txn->del(dbs_.event_index, ik); !d) return Error{d.error()};
    if (auto d = txn->del(dbs_.events, key); !d) return Error{d.error()};
  }
  if (doomed.empty()) return size_t{0};
  if (auto st = txn->commit(); !st) return Error{st.error()};
  return doomed.size();
}

bool TrackFilter::matches(const TrackEvent& e) const {
  if (since_ms && e.time_ms < *since_ms) return false;
  if (until_ms && e.time_ms > *until_ms) return false;
  if (!sender.empty() && !iequal(sender, e.sender)) return false;
  if (!client_ip.empty() && client_ip != e.client_ip) return false;
  if (!message_id.empty() && message_id != e.message_id) return false;
  if (!ref_id.empty() && ref_id != e.ref_id) return false;
  if (!recipient.empty() &&
      std::none_of(e.recipients.begin(), e.recipients.end(), [&](const std::string& r) { return iequal(r, recipient); }))
    return false;
  return true;
}

}  // namespace mxguard::store
