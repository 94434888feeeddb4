// Spool environment: bodies chunked to at most 64 KiB per value, one write
// transaction per batch (group commit), synchronous commits.
#include "mxguard/store/spool.hpp"

#include "mxguard/store/quarantine.hpp"

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

void put_string(std::string& out, std::string_view v) {
  put_le(out, v.size(), 4);
  out.append(v);
}

bool get_string(std::string_view in, size_t& at, std::string& v) {
  if (in.size() - at < 4) return false;
  uint64_t n = get_le(in, at, 4);
  at += 4;
  if (in.size() - at < n) return false;
  v.assign(in.substr(at, n));
  at += n;
  return true;
}

}  // namespace

std::string encode_queue_entry(const QueueEntry& q) {
  std::string out;
  out.push_back(static_cast<char>(kQueueEntryVersion));
  out.push_back(static_cast<char>(q.state));
  put_le(out, static_cast<uint64_t>(q.next_attempt_ms), 8);
  put_le(out, q.attempts, 4);
  out.push_back(q.bounce_requested ? 1 : 0);
  put_le(out, q.recipients.size(), 4);
  for (const auto& r : q.recipients) {
    put_string(out, r.address);
    put_le(out, static_cast<uint32_t>(r.last_code), 4);
    put_string(out, r.last_error);
  }
  return out;
}

Result<QueueEntry> decode_queue_entry(std::string_view b) {
  if (b.size() < 14 || static_cast<uint8_t>(b[0]) == 0 || static_cast<uint8_t>(b[0]) > kQueueEntryVersion)
    return Error{"unsupported or corrupt queue entry"};
  const uint8_t version = static_cast<uint8_t>(b[0]);
  // An unknown state byte would become an out-of-range enum value downstream.
  if (static_cast<uint8_t>(b[1]) > static_cast<uint8_t>(QueueState::kDeferred))
    return Error{"queue entry has an unknown state"};
  QueueEntry q;
  q.state = static_cast<QueueState>(b[1]);
  q.next_attempt_ms = static_cast<int64_t>(get_le(b, 2, 8));
  q.attempts = static_cast<uint32_t>(get_le(b, 10, 4));
  if (version == 1) {
    if (b.size() != 14) return Error{"unsupported or corrupt queue entry"};
    return q;
  }
  size_t at = 14;
  if (b.size() - at < 5) return Error{"truncated queue entry"};
  q.bounce_requested = b[at++] != 0;
  uint64_t n = get_le(b, at, 4);
  at += 4;
  if (n > 100'000) return Error{"corrupt queue entry"};
  for (uint64_t i = 0; i < n; ++i) {
    QueueRecipient r;
    if (!get_string(b, at, r.address) || b.size() - at < 4) return Error{"truncated queue entry"};
    r.last_code = static_cast<int>(get_le(b, at, 4));
    at += 4;
    if (!get_string(b, at, r.last_error)) return Error{"truncated queue entry"};
    q.recipients.push_back(std::move(r));
  }
  if (at != b.size()) return Error{"corrupt queue entry"};
  return q;
}

std::vector<QueueRecipient> pending_recipients(const Envelope& e, const QueueEntry& q) {
  if (!q.recipients.empty()) return q.recipients;
  std::vector<QueueRecipient> out;
  for (const auto& r : e.recipients)
    if (std::find(e.quarantined.begin(), e.quarantined.end(), r) == e.quarantined.end()) out.push_back({r, 0, ""});
  return out;
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

Result<std::unique_ptr<Spool>> Spool::open(const std::string& state_dir, unsigned shard, bool deferred_meta_sync) {
  auto env = Env::open(dir_for(state_dir, shard), 16, kSpoolMapSize, deferred_meta_sync ? MDB_NOMETASYNC : 0u);
  if (!env) return Error{env.error()};
  SpoolDbs dbs{};
  const std::pair<const char*, MDB_dbi*> names[] = {
      {"envelopes", &dbs.envelopes}, {"bodies", &dbs.bodies},   {"queue", &dbs.queue},
      {"due", &dbs.due},             {"quarantine", &dbs.quarantine}, {"qbodies", &dbs.qbodies},
      {"qindex", &dbs.qindex},       {"feed", &dbs.feed},
      {"events", &dbs.events},       {"event_index", &dbs.event_index}};
  for (auto [name, dbi] : names) {
    auto d = env->open_db(name);
    if (!d) return Error{fmt::format("{}: {}", name, d.error())};
    *dbi = *d;
  }
  return std::unique_ptr<Spool>(new Spool(std::move(*env), dbs));
}

uint64_t Spool::last_txnid() const {
  MDB_envinfo info;
  if (mdb_env_info(env_.get(), &info) != 0) return 0;
  return info.me_last_txnid;
}

Status Spool::sync() {
  if (int rc = mdb_env_sync(env_.get(), 1); rc) return Error{lmdb_error("mdb_env_sync", rc)};
  return {};
}

namespace {

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

std::string due_key(int64_t when_ms, std::string_view id) {
  std::string k = be64(static_cast<uint64_t>(std::max<int64_t>(when_ms, 0)));
  k.append(id);
  return k;
}

Status Spool::enqueue(Txn& txn, const Envelope& e, std::string_view data, int64_t when_ms) {
  const std::string& id = e.id;
  if (auto s = txn.put(dbs_.envelopes, id, encode_envelope(e), MDB_NOOVERWRITE); !s)
    return Error{fmt::format("envelope {}: {}", id, s.error())};
  uint32_t index = 0;
  for (size_t off = 0; off < data.size() || index == 0; off += kBodyChunkSize, ++index) {
    if (auto s = txn.put(dbs_.bodies, body_chunk_key(id, index), data.substr(off, kBodyChunkSize)); !s)
      return Error{fmt::format("body {}: {}", id, s.error())};
    if (data.empty()) break;
  }
  QueueEntry q;
  q.next_attempt_ms = when_ms;
  q.recipients = pending_recipients(e, q);
  if (auto s = txn.put(dbs_.queue, id, encode_queue_entry(q)); !s) return Error{fmt::format("queue {}: {}", id, s.error())};
  if (auto s = txn.put(dbs_.due, due_key(when_ms, id), ""); !s) return Error{fmt::format("due {}: {}", id, s.error())};
  return {};
}

Status Spool::store_batch(const std::vector<Record>& records, const std::vector<std::string>& feed) {
  return commit(records, feed, {}, {});
}

Status Spool::store_in(Txn& txn, const std::vector<Record>& records, const std::vector<std::string>& feed) {
  if (auto st = append_feed(txn, dbs_.feed, feed); !st) return Error{fmt::format("feed: {}", st.error())};
  for (const Record& r : records) {
    const Envelope& e = *r.envelope;
    if (!e.quarantined.empty())
      if (auto s = quarantine_store(txn, dbs_, e, r.data); !s)
        return Error{fmt::format("quarantine {}: {}", e.id, s.error())};
    // A message quarantined for every recipient has nothing to deliver: the
    // quarantine keeps the only copy.
    if (e.quarantined.size() >= e.recipients.size() && !e.quarantined.empty()) continue;
    if (auto s = enqueue(txn, e, r.data, e.received_ms); !s) return s;
  }
  return {};
}

Status Spool::commit(const std::vector<Record>& records, const std::vector<std::string>& feed,
                     const std::vector<DeliveryUpdate>& updates, const std::vector<NewMessage>& added,
                     const std::vector<TrackEvent>& events) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  if (auto s = add_events_in(*txn, events); !s) return Error{fmt::format("events: {}", s.error())};
  if (auto s = store_in(*txn, records, feed); !s) return s;
  if (auto s = apply_in(*txn, updates, added); !s) return s;
  return txn->commit();
}

Status Spool::apply(const std::vector<DeliveryUpdate>& updates, const std::vector<NewMessage>& added) {
  if (updates.empty() && added.empty()) return {};
  return commit({}, {}, updates, added);
}

Status Spool::apply_in(Txn& txn_ref, const std::vector<DeliveryUpdate>& updates, const std::vector<NewMessage>& added) {
  Txn* txn = &txn_ref;
  for (const DeliveryUpdate& u : updates) {
    auto raw = txn->get(dbs_.queue, u.id);
    if (!raw) return Error{raw.error()};
    if (!*raw) continue;  // deleted by the console meanwhile
    // A record that does not decode is left as it is rather than failing
    // the whole commit, which may also hold newly received messages.
    auto q = decode_queue_entry(**raw);
    if (!q) continue;
    auto env_raw = txn->get(dbs_.envelopes, u.id);
    if (!env_raw) return Error{env_raw.error()};
    if (!*env_raw) continue;
    auto env = decode_envelope(**env_raw);
    if (!env) continue;
    std::vector<QueueRecipient> left;
    for (QueueRecipient& r : pending_recipients(*env, *q)) {
      if (std::find(u.done.begin(), u.done.end(), r.address) != u.done.end()) continue;
      for (const auto& d : u.deferred)
        if (d.address == r.address) r = d;
      left.push_back(std::move(r));
    }
    if (left.empty()) {
      if (auto s = remove_in(*txn, u.id, *q); !s) return s;
      continue;
    }
    if (auto d = txn->del(dbs_.due, due_key(q->next_attempt_ms, u.id)); !d) return Error{d.error()};
    q->recipients = std::move(left);
    q->state = QueueState::kDeferred;
    q->next_attempt_ms = u.next_attempt_ms;
    q->bounce_requested = false;
    if (u.count_attempt) ++q->attempts;
    if (auto s = txn->put(dbs_.queue, u.id, encode_queue_entry(*q)); !s) return s;
    if (auto s = txn->put(dbs_.due, due_key(q->next_attempt_ms, u.id), ""); !s) return s;
  }
  for (const NewMessage& m : added)
    if (auto s = enqueue(*txn, m.envelope, m.data, m.envelope.received_ms); !s) return s;
  return {};
}

Result<std::vector<std::string>> Spool::due(int64_t now_ms, size_t max) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  std::vector<std::string> out;
  const std::string limit = be64(static_cast<uint64_t>(std::max<int64_t>(now_ms, 0)));
  Cursor cur(*txn, dbs_.due);
  for (bool ok = cur.seek(""); ok && out.size() < max; ok = cur.next()) {
    std::string_view k = cur.key();
    if (k.size() <= 8 || k.substr(0, 8) > limit) break;
    out.emplace_back(k.substr(8));
  }
  return out;
}

Result<std::optional<int64_t>> Spool::next_due() const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  Cursor cur(*txn, dbs_.due);
  if (!cur.seek("") || cur.key().size() < 8) return std::optional<int64_t>();
  return std::optional<int64_t>(static_cast<int64_t>(from_be64(cur.key())));
}

Result<bool> Spool::reschedule(std::string_view id, int64_t when_ms, bool bounce) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto raw = txn->get(dbs_.queue, id);
  if (!raw) return Error{raw.error()};
  if (!*raw) return false;
  auto q = decode_queue_entry(**raw);
  if (!q) return Error{q.error()};
  if (auto d = txn->del(dbs_.due, due_key(q->next_attempt_ms, id)); !d) return Error{d.error()};
  q->next_attempt_ms = when_ms;
  if (bounce) q->bounce_requested = true;
  if (auto s = txn->put(dbs_.queue, id, encode_queue_entry(*q)); !s) return Error{s.error()};
  if (auto s = txn->put(dbs_.due, due_key(when_ms, id), ""); !s) return Error{s.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return true;
}

Status Spool::feed_since(uint64_t after, const std::function<void(uint64_t, std::string_view)>& fn) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  Cursor cur(*txn, dbs_.feed);
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
  Cursor cur(*txn, dbs_.quarantine);
  for (bool ok = cur.seek(""); ok; ok = cur.next()) out.emplace_back(cur.key());
  return out;
}

Result<Spool::QueueStats> Spool::queue_stats() const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  QueueStats st;
  MDB_stat ms;
  if (int rc = mdb_stat(txn->get(), dbs_.queue, &ms); rc) return Error{lmdb_error("mdb_stat", rc)};
  st.messages = ms.ms_entries;
  Cursor cur(*txn, dbs_.queue);
  if (!cur.seek("")) return st;
  auto raw = txn->get(dbs_.envelopes, cur.key());
  if (!raw) return Error{raw.error()};
  if (*raw) {
    auto env = decode_envelope(**raw);
    if (!env) return Error{fmt::format("envelope {}: {}", cur.key(), env.error())};
    st.oldest_received_ms = env->received_ms;
  }
  return st;
}

Status Spool::for_each(const std::function<void(const Envelope&, const QueueEntry&)>& fn) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  Cursor cur(*txn, dbs_.queue);
  for (bool ok = cur.seek(""); ok; ok = cur.next()) {
    auto q = decode_queue_entry(cur.value());
    if (!q) return Error{fmt::format("queue entry {}: {}", cur.key(), q.error())};
    auto raw = txn->get(dbs_.envelopes, cur.key());
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
  auto raw = txn->get(dbs_.envelopes, id);
  if (!raw) return Error{raw.error()};
  if (!*raw) return std::optional<Envelope>();
  auto env = decode_envelope(**raw);
  if (!env) return Error{env.error()};
  return std::optional<Envelope>(std::move(*env));
}

Result<std::optional<QueueEntry>> Spool::queue_entry(std::string_view id) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  auto raw = txn->get(dbs_.queue, id);
  if (!raw) return Error{raw.error()};
  if (!*raw) return std::optional<QueueEntry>();
  auto q = decode_queue_entry(**raw);
  if (!q) return Error{q.error()};
  return std::optional<QueueEntry>(std::move(*q));
}

Result<std::optional<std::string>> Spool::read_message(std::string_view id) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  auto raw = txn->get(dbs_.envelopes, id);
  if (!raw) return Error{raw.error()};
  if (!*raw) return std::optional<std::string>();
  std::string data;
  std::string prefix = std::string(id) + "#";
  Cursor cur(*txn, dbs_.bodies);
  for (bool ok = cur.seek(prefix); ok && cur.key().substr(0, prefix.size()) == prefix; ok = cur.next())
    data.append(cur.value());
  return std::optional<std::string>(std::move(data));
}

// Deletes a queued message's envelope, body, queue entry and due key.
Status Spool::remove_in(Txn& txn, std::string_view id, const std::optional<QueueEntry>& entry) {
  if (auto r = txn.del(dbs_.envelopes, id); !r) return Error{r.error()};
  if (auto r = txn.del(dbs_.queue, id); !r) return Error{r.error()};
  if (entry)
    if (auto r = txn.del(dbs_.due, due_key(entry->next_attempt_ms, id)); !r) return Error{r.error()};
  std::string prefix = std::string(id) + "#";
  std::vector<std::string> keys;
  {
    Cursor cur(txn, dbs_.bodies);
    for (bool ok = cur.seek(prefix); ok && cur.key().substr(0, prefix.size()) == prefix; ok = cur.next())
      keys.emplace_back(cur.key());
  }
  for (const auto& k : keys)
    if (auto r = txn.del(dbs_.bodies, k); !r) return Error{r.error()};
  return {};
}

Result<bool> Spool::remove(std::string_view id) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto existed = txn->get(dbs_.envelopes, id);
  if (!existed) return Error{existed.error()};
  if (!*existed) return false;
  std::optional<QueueEntry> entry;
  if (auto raw = txn->get(dbs_.queue, id); raw && *raw)
    if (auto q = decode_queue_entry(**raw)) entry = std::move(*q);
  if (auto s = remove_in(*txn, id, entry); !s) return Error{s.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return true;
}

}  // namespace mxguard::store
