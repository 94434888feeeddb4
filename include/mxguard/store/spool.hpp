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

namespace mxguard::store {

inline constexpr size_t kBodyChunkSize = 64 * 1024;
inline constexpr uint8_t kQueueEntryVersion = 1;

enum class QueueState : uint8_t { kQueued = 0, kDeferred = 1 };

struct QueueEntry {
  QueueState state = QueueState::kQueued;
  int64_t next_attempt_ms = 0;
  uint32_t attempts = 0;
};

std::string encode_queue_entry(const QueueEntry& q);
Result<QueueEntry> decode_queue_entry(std::string_view bytes);

class Spool {
 public:
  struct Record {
    const Envelope* envelope;
    std::string_view data;
  };

  static std::string dir_for(const std::string& state_dir, unsigned shard);
  // The shard numbers that have a spool under `state_dir`, ascending.
  static std::vector<unsigned> existing_shards(const std::string& state_dir);
  static Result<std::unique_ptr<Spool>> open(const std::string& state_dir, unsigned shard);

  // Stores every record in one write transaction, with the feed entries;
  // when this returns success the commit is on disk. A message with
  // quarantined recipients gets a quarantine index entry; it is queued for
  // delivery only when some recipient is not quarantined.
  Status store_batch(const std::vector<Record>& records, const std::vector<std::string>& feed = {});

  // The live feed: JSON entries in a ring of the newest kFeedKeep, numbered
  // in order. fn gets (sequence, entry) for every entry after `after`.
  static constexpr uint64_t kFeedKeep = 10'000;
  Status feed_since(uint64_t after, const std::function<void(uint64_t, std::string_view)>& fn) const;
  // Ids of quarantined messages (the quarantine issue builds on this index).
  Result<std::vector<std::string>> quarantined_ids() const;

  // Read side (console, delivery).
  Status for_each(const std::function<void(const Envelope&, const QueueEntry&)>& fn) const;
  Result<std::optional<Envelope>> envelope(std::string_view id) const;
  // The message's delivery-queue entry, nullopt when it is not queued.
  Result<std::optional<QueueEntry>> queue_entry(std::string_view id) const;
  Result<std::optional<std::string>> read_message(std::string_view id) const;
  Result<bool> remove(std::string_view id);

  // For tests and tools that inspect the raw layout (e.g. count body chunks).
  const Env& env() const { return env_; }
  MDB_dbi bodies_dbi() const { return bodies_; }

 private:
  Spool(Env env, MDB_dbi envelopes, MDB_dbi bodies, MDB_dbi queue, MDB_dbi quarantine, MDB_dbi feed)
      : env_(std::move(env)), envelopes_(envelopes), bodies_(bodies), queue_(queue), quarantine_(quarantine),
        feed_(feed) {}

  Env env_;
  MDB_dbi envelopes_, bodies_, queue_, quarantine_, feed_;
};

// Body chunk key: "<id>#<chunk index as 6 hex digits>", sorted by index.
std::string body_chunk_key(std::string_view id, uint32_t index);

}  // namespace mxguard::store
