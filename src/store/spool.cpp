// Spool environment: bodies chunked to at most 64 KiB per value, one write
// transaction per batch (group commit), synchronous commits.
#include "mxguard/store/spool.hpp"

#include <dirent.h>

#include <algorithm>
#include <fmt/format.h>

namespace mxguard::store {

namespace {
constexpr size_t kSpoolMapSize = size_t{64} << 30;  // address space only; the file grows as used

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_le(std::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return v;
}
}  // namespace

std::string encode_queue_entry(const QueueEntry& q) {
  std::string out;
  out.push_back(static_cast<char>(kQueueEntryVersion));
  out.push_back(static_cast<char>(q.state));
  put_le(out, static_cast<uint64_t>(q.next_attempt_ms), 8);
  put_le(out, q.attempts, 4);
  return out;
}

Result<QueueEntry> decode_queue_entry(std::string_view b) {
  if (b.size() != 14 || static_cast<uint8_t>(b[0]) != kQueueEntryVersion)
    return Error{"unsupported or corrupt queue entry"};
  // An unknown state byte would become an out-of-range enum value downstream.
  if (static_cast<uint8_t>(b[1]) > static_cast<uint8_t>(QueueState::kDeferred))
    return Error{"queue entry has an unknown state"};
  QueueEntry q;
  q.state = static_cast<QueueState>(b[1]);
  q.next_attempt_ms = static_cast<int64_t>(get_le(b, 2, 8));
  q.attempts = static_cast<uint32_t>(get_le(b, 10, 4));
  return q;
}

std::string body_chunk_key(std::string_view id, uint32_t index) {
  return fmt::format("{}#{:06x}", id, index);
}

std::string Spool::dir_for(const std::string& state_dir, unsigned shard) {
  return fmt::format("{}/spool-{}", state_dir, shard);
}

std::vector<unsigned> Spool::existing_shards(const std::string& state_dir) {
  std::vector<unsigned> out;
  DIR* d = opendir(state_dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string_view name = e->d_name;
    if (name.substr(0, 6) != "spool-" || name.size() == 6) continue;
    unsigned v = 0;
    bool ok = true;
    for (char c : name.substr(6)) {
      if (c < '0' || c > '9' || v > 100000) { ok = false; break; }
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (ok) out.push_back(v);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::unique_ptr<Spool>> Spool::open(const std::string& state_dir, unsigned shard) {
  auto env = Env::open(dir_for(state_dir, shard), 8, kSpoolMapSize);
  if (!env) return Error{env.error()};
  auto envelopes = env->open_db("envelopes");
  if (!envelopes) return Error{envelopes.error()};
  auto bodies = env->open_db("bodies");
  if (!bodies) return Error{bodies.error()};
  auto queue = env->open_db("queue");
  if (!queue) return Error{queue.error()};
  auto quarantine = env->open_db("quarantine");
  if (!quarantine) return Error{quarantine.error()};
  auto feed = env->open_db("feed");
  if (!feed) return Error{feed.error()};
  return std::unique_ptr<Spool>(new Spool(std::move(*env), *envelopes, *bodies, *queue, *quarantine, *feed));
}

namespace {

constexpr uint8_t kQuarantineIndexVersion = 1;
constexpr uint8_t kFeedEntryVersion = 1;

std::string be64(uint64_t v) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i) {
    k[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return k;
}

uint64_t from_be64(std::string_view k) {
  uint64_t v = 0;
  for (char c : k.substr(0, 8)) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

// Appends the feed entries after the newest one and trims the ring.
Status append_feed(Txn& txn, MDB_dbi feed, const std::vector<std::string>& entries) {
  if (entries.empty()) return {};
  uint64_t last = 0, first = 0;
  {
    MDB_cursor* cur = nullptr;
    if (int rc = mdb_cursor_open(txn.get(), feed, &cur); rc) return Error{mdb_strerror(rc)};
    MDB_val k, v;
    if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0) last = from_be64(from_val(k));
    if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0) first = from_be64(from_val(k));
    mdb_cursor_close(cur);
  }
  for (const auto& e : entries) {
    std::string value(1, static_cast<char>(kFeedEntryVersion));
    value += e;
    if (auto st = txn.put(feed, be64(++last), value); !st) return st;
  }
  while (first != 0 && last - first + 1 > Spool::kFeedKeep) {
    if (auto d = txn.del(feed, be64(first)); !d) return Error{d.error()};
    ++first;
  }
  return {};
}

}  // namespace

Status Spool::store_batch(const std::vector<Record>& records, const std::vector<std::string>& feed) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  if (auto st = append_feed(*txn, feed_, feed); !st) return Error{fmt::format("feed: {}", st.error())};
  for (const Record& r : records) {
    const std::string& id = r.envelope->id;
    if (auto s = txn->put(envelopes_, id, encode_envelope(*r.envelope), MDB_NOOVERWRITE); !s)
      return Error{fmt::format("envelope {}: {}", id, s.error())};
    uint32_t index = 0;
    for (size_t off = 0; off < r.data.size() || index == 0; off += kBodyChunkSize, ++index) {
      std::string_view chunk = r.data.substr(off, kBodyChunkSize);
      if (auto s = txn->put(bodies_, body_chunk_key(id, index), chunk); !s)
        return Error{fmt::format("body {}: {}", id, s.error())};
      if (r.data.empty()) break;
    }
    const Envelope& e = *r.envelope;
    if (!e.quarantined.empty()) {
      std::string q(1, static_cast<char>(kQuarantineIndexVersion));
      q += be64(static_cast<uint64_t>(e.received_ms));
      if (auto s = txn->put(quarantine_, id, q); !s) return Error{fmt::format("quarantine {}: {}", id, s.error())};
    }
    if (e.quarantined.size() >= e.recipients.size() && !e.quarantined.empty()) continue;
    QueueEntry q;
    q.next_attempt_ms = e.received_ms;
    if (auto s = txn->put(queue_, id, encode_queue_entry(q)); !s)
      return Error{fmt::format("queue {}: {}", id, s.error())};
  }
  return txn->commit();
}

Status Spool::feed_since(uint64_t after, const std::function<void(uint64_t, std::string_view)>& fn) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  Cursor cur(*txn, feed_);
  for (bool ok = cur.seek(be64(after + 1)); ok; ok = cur.next()) {
    std::string_view v = cur.value();
    if (v.empty() || static_cast<uint8_t>(v[0]) != kFeedEntryVersion) continue;
    fn(from_be64(cur.key()), v.substr(1));
  }
  return {};
}

Result<std::vector<std::string>> Spool::quarantined_ids() const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  std::vector<std::string> out;
  Cursor cur(*txn, quarantine_);
  for (bool ok = cur.seek(""); ok; ok = cur.next()) out.emplace_back(cur.key());
  return out;
}

Status Spool::for_each(const std::function<void(const Envelope&, const QueueEntry&)>& fn) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  Cursor cur(*txn, queue_);
  for (bool ok = cur.seek(""); ok; ok = cur.next()) {
    auto q = decode_queue_entry(cur.value());
    if (!q) return Error{fmt::format("queue entry {}: {}", cur.key(), q.error())};
    auto raw = txn->get(envelopes_, cur.key());
    if (!raw) return Error{raw.error()};
    if (!*raw) return Error{fmt::format("queue entry {} has no envelope", cur.key())};
    auto env = decode_envelope(**raw);
    if (!env) return Error{fmt::format("envelope {}: {}", cur.key(), env.error())};
    fn(*env, *q);
  }
  return {};
}

Result<std::optional<Envelope>> Spool::envelope(std::string_view id) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  auto raw = txn->get(envelopes_, id);
  if (!raw) return Error{raw.error()};
  if (!*raw) return std::optional<Envelope>();
  auto env = decode_envelope(**raw);
  if (!env) return Error{env.error()};
  return std::optional<Envelope>(std::move(*env));
}

Result<std::optional<QueueEntry>> Spool::queue_entry(std::string_view id) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  auto raw = txn->get(queue_, id);
  if (!raw) return Error{raw.error()};
  if (!*raw) return std::optional<QueueEntry>();
  auto q = decode_queue_entry(**raw);
  if (!q) return Error{q.error()};
  return std::optional<QueueEntry>(*q);
}

Result<std::optional<std::string>> Spool::read_message(std::string_view id) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  auto raw = txn->get(envelopes_, id);
  if (!raw) return Error{raw.error()};
  if (!*raw) return std::optional<std::string>();
  std::string data;
  std::string prefix = std::string(id) + "#";
  Cursor cur(*txn, bodies_);
  for (bool ok = cur.seek(prefix); ok && cur.key().substr(0, prefix.size()) == prefix; ok = cur.next())
    data.append(cur.value());
  return std::optional<std::string>(std::move(data));
}

Result<bool> Spool::remove(std::string_view id) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto existed = txn->del(envelopes_, id);
  if (!existed) return Error{existed.error()};
  if (auto r = txn->del(queue_, id); !r) return Error{r.error()};
  if (auto r = txn->del(quarantine_, id); !r) return Error{r.error()};
  std::string prefix = std::string(id) + "#";
  std::vector<std::string> keys;
  {
    Cursor cur(*txn, bodies_);
    for (bool ok = cur.seek(prefix); ok && cur.key().substr(0, prefix.size()) == prefix; ok = cur.next())
      keys.emplace_back(cur.key());
  }
  for (const auto& k : keys)
    if (auto r = txn->del(bodies_, k); !r) return Error{r.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return *existed;
}

}  // namespace mxguard::store
