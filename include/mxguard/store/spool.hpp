// A shard's spool environment: message bodies in chunks, envelopes and the
// delivery-queue index. The shard's storage writer is its only writer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/result.hpp"
#include "mxguard/store/envelope.hpp"
#include "mxguard/store/lmdb.hpp"
#include "mxguard/store/tracking.hpp"

namespace mxguard::store {

inline constexpr size_t kBodyChunkSize = 64 * 1024;
// Version 2 added the per-recipient delivery state; version 1 entries still
// decode (every envelope recipient not quarantined is pending).
inline constexpr uint8_t kQueueEntryVersion = 2;

enum class QueueState : uint8_t { kQueued = 0, kDeferred = 1 };

// A recipient still to be delivered, with what its last attempt said.
struct QueueRecipient {
  std::string address;
  int last_code = 0;       // the backend's reply code, 0 when none (connection, TLS)
  std::string last_error;  // one line, "" before the first attempt
};

struct QueueEntry {
  QueueState state = QueueState::kQueued;
  int64_t next_attempt_ms = 0;
  uint32_t attempts = 0;
  // Recipients still to deliver; delivered and bounced ones are removed. Empty
  // in a version 1 entry: see pending_recipients().
  std::vector<QueueRecipient> recipients;
  bool bounce_requested = false;  // `queue bounce`: the engine returns it to the sender
};

// The recipients a queue entry still has to deliver.
std::vector<QueueRecipient> pending_recipients(const Envelope& e, const QueueEntry& q);

std::string encode_queue_entry(const QueueEntry& q);
Result<QueueEntry> decode_queue_entry(std::string_view bytes);

// The named databases of a spool env; the quarantine code works on them too.
struct SpoolDbs {
  MDB_dbi envelopes, bodies, queue, due, quarantine, qbodies, qindex, feed;
  MDB_dbi events, event_index;  // tracking: see tracking.hpp
};

// What one delivery attempt changed for one message, applied by the storage
// writer (the env's only writer in the engine).
struct DeliveryUpdate {
  std::string id;
  std::vector<std::string> done;              // delivered or bounced: no longer queued
  std::vector<QueueRecipient> deferred;       // try again at next_attempt_ms
  int64_t next_attempt_ms = 0;
  bool count_attempt = true;
};

// A new message to queue (a DSN we generate), stored with the updates.
struct NewMessage {
  Envelope envelope;
  std::string data;
};

class Spool {
 public:
  struct Record {
    const Envelope* envelope;
    std::string_view data;
  };

  static std::string dir_for(const std::string& state_dir, unsigned shard);
  // The shard numbers that have a spool under `state_dir`, ascending.
  static std::vector<unsigned> existing_shards(const std::string& state_dir);
  // With `deferred_meta_sync` (the engine's storage writer) a commit syncs
  // its data pages but not its meta page (MDB_NOMETASYNC): the commit is on
  // disk only once a later commit has synced (last_txnid() moved past it) or
  // sync() returned. The console opens without it: each commit is on disk.
  static Result<std::unique_ptr<Spool>> open(const std::string& state_dir, unsigned shard,
                                             bool deferred_meta_sync = false);
  // The id of the newest committed transaction, by any process.
  uint64_t last_txnid() const;
  // Makes every commit so far durable (fdatasync of the data file).
  Status sync();

  // Stores every record in one write transaction, with the feed entries;
  // when this returns success the commit is on disk (see open()). A message with
  // quarantined recipients gets a quarantine index entry; it is queued for
  // delivery only when some recipient is not quarantined.
  Status store_batch(const std::vector<Record>& records, const std::vector<std::string>& feed = {});

  // The live feed: JSON entries in a ring of the newest kFeedKeep, numbered
  // in order. fn gets (sequence, entry) for every entry after `after`.
  static constexpr uint64_t kFeedKeep = 10'000;
  Status feed_since(uint64_t after, const std::function<void(uint64_t, std::string_view)>& fn) const;
  // Ids of quarantined messages (the quarantine issue builds on this index).
  Result<std::vector<std::string>> quarantined_ids() const;

  // Queues a message (envelope, body, queue entry, due index) inside `txn`:
  // used by store_batch, quarantine release and DSNs.
  Status enqueue(Txn& txn, const Envelope& e, std::string_view data, int64_t when_ms);
  // Applies delivery results and queues new messages in one commit. A message
  // left without recipients is deleted with its body.
  Status apply(const std::vector<DeliveryUpdate>& updates, const std::vector<NewMessage>& added);
  // Both in one commit (the storage writer: one fsync for new messages and
  // delivery results alike).
  Status commit(const std::vector<Record>& records, const std::vector<std::string>& feed,
                const std::vector<DeliveryUpdate>& updates, const std::vector<NewMessage>& added,
                const std::vector<TrackEvent>& events = {});
  // Ids of queued messages whose next attempt is at or before now, oldest
  // first, at most max.
  Result<std::vector<std::string>> due(int64_t now_ms, size_t max) const;
  // The next attempt time of the earliest queued message, nullopt when empty.
  Result<std::optional<int64_t>> next_due() const;
  // Reschedules a queued message (console `queue retry`, `queue bounce`).
  Result<bool> reschedule(std::string_view id, int64_t when_ms, bool bounce);

  // Entries in the delivery queue and the receive time of the oldest (0
  // when empty), in one short read: ids begin with their receive time, so
  // the queue's first key is its oldest message. For /metrics and status.
  struct QueueStats {
    uint64_t messages = 0;
    int64_t oldest_received_ms = 0;
  };
  Result<QueueStats> queue_stats() const;

  // Tracking events (tracking.hpp). add_events_in writes into the caller's
  // transaction (the storage writer's batch); add_events commits on its own
  // (the console's rare quarantine actions).
  Status add_events_in(Txn& txn, const std::vector<TrackEvent>& events);
  Status add_events(const std::vector<TrackEvent>& events);
  // Calls fn for each matching event in time order; uses the index when the
  // filter names a sender, recipient, client, message id or reference id.
  Status find_events(const TrackFilter& f, const std::function<void(const TrackEvent&)>& fn) const;
  // Drops events older than before_ms, at most max per call; returns how many.
  Result<size_t> purge_events(int64_t before_ms, size_t max = 10'000);

  // Read side (console, delivery).
  Status for_each(const std::function<void(const Envelope&, const QueueEntry&)>& fn) const;
  Result<std::optional<Envelope>> envelope(std::string_view id) const;
  // The message's delivery-queue entry, nullopt when it is not queued.
  Result<std::optional<QueueEntry>> queue_entry(std::string_view id) const;
  Result<std::optional<std::string>> read_message(std::string_view id) const;
  Result<bool> remove(std::string_view id);

  // For tests and tools that inspect the raw layout (e.g. count body chunks).
  const Env& env() const { return env_; }
  MDB_dbi bodies_dbi() const { return dbs_.bodies; }
  const SpoolDbs& dbs() const { return dbs_; }

 private:
  Spool(Env env, SpoolDbs dbs) : env_(std::move(env)), dbs_(dbs) {}
  Status remove_in(Txn& txn, std::string_view id, const std::optional<QueueEntry>& entry);
  Status store_in(Txn& txn, const std::vector<Record>& records, const std::vector<std::string>& feed);
  Status apply_in(Txn& txn, const std::vector<DeliveryUpdate>& updates, const std::vector<NewMessage>& added);

  Env env_;
  SpoolDbs dbs_;
};

// Due-index key: big-endian time then the id, so a cursor walks in time order.
std::string due_key(int64_t when_ms, std::string_view id);

// Body chunk key: "<id>#<chunk index as 6 hex digits>", sorted by index.
std::string body_chunk_key(std::string_view id, uint32_t index);

}  // namespace mxguard::store
