// The quarantine in a shard's spool env: messages held instead of delivered,
// kept zstd-compressed, indexed by domain, recipient and time.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/result.hpp"
#include "mxguard/store/envelope.hpp"
#include "mxguard/store/lmdb.hpp"
#include "mxguard/store/spool.hpp"

namespace mxguard::store {

inline constexpr uint8_t kQuarantineRecordVersion = 1;
// At most this many messages change in one purge write transaction, so a
// purge never holds the shard's writer lock for long.
inline constexpr size_t kQuarantinePurgeBatch = 500;

// What the `quarantine` db holds under a message id. Self-sufficient: a
// message quarantined for all its recipients has no envelope in the queue.
struct QuarantineRecord {
  // The envelope as received and scanned: `recipients` are all of the
  // message's, `quarantined` those whose copy is still held here.
  Envelope envelope;
  uint64_t raw_size = 0;        // bytes of the stored message, uncompressed
  uint64_t content_offset = 0;  // where the client's message starts (after our own header fields)
  uint64_t stored_size = 0;     // bytes of the compressed body
  uint32_t chunks = 0;          // body values in `qbodies`
  uint32_t releases = 0;        // release copies queued so far; names the next one

  const std::vector<std::string>& held() const { return envelope.quarantined; }
};

std::string encode_quarantine_record(const QuarantineRecord& r);
Result<QuarantineRecord> decode_quarantine_record(std::string_view bytes);

// Stores the quarantined copy of a message for its `quarantined` recipients,
// inside the storage writer's batch transaction: the zstd-compressed body in
// chunks of at most kBodyChunkSize, the record and its index keys.
Status quarantine_store(Txn& txn, const SpoolDbs& dbs, const Envelope& e, std::string_view data);

// Which records quarantine_list returns. Addresses and domains compare
// case-insensitively.
struct QuarantineQuery {
  std::vector<std::string> recipients;  // non-empty: one of these is held
  std::vector<std::string> domains;     // else non-empty: a held recipient is in one of these
  int64_t since_ms = std::numeric_limits<int64_t>::min();  // received at or after
  int64_t until_ms = std::numeric_limits<int64_t>::max();  // received before
  // Non-empty (lower case): the sender, subject, Message-ID or a held
  // recipient contains it. The index entries carry that text, so a search
  // skips non-matching messages without reading their records.
  std::string text;
};

// Matching records, oldest first, read through the index in one short read
// transaction.
Result<std::vector<QuarantineRecord>> quarantine_list(const Spool& spool, const QuarantineQuery& q);

// A place in the quarantine's order: received time, then id.
struct QuarantinePosition {
  int64_t received_ms = 0;
  std::string id;
};
// The records matching `q`, newest first (received time, then id, both
// descending), only those strictly older than `before` when it is given,
// handed to `take` one at a time until it returns false. Reads the index
// only as far as `take` wants, in one read transaction, so a page of N
// costs about N index and record reads (plus those `take` turns down).
Status quarantine_walk_newest(const Spool& spool, const QuarantineQuery& q,
                              const std::optional<QuarantinePosition>& before,
                              const std::function<bool(QuarantineRecord&)>& take);
// One record; nullopt when the id is not quarantined.
Result<std::optional<QuarantineRecord>> quarantine_get(const Spool& spool, std::string_view id);
// The stored message bytes, decompressed and checked against the record.
Result<std::optional<std::string>> quarantine_message(const Spool& spool, std::string_view id);

// Queues a copy of the message for `recipients` (each must still be held),
// under a new id "<id without .sN>-r<N>.s<shard>" in the same spool, and
// stops holding them, in one write transaction. Returns the queued id.
Result<std::string> quarantine_release(Spool& spool, std::string_view id, const std::vector<std::string>& recipients,
                                       int64_t now_ms);
// Stops holding `recipients` (every held one when empty); the record and its
// body go when none is left. Returns whether the message left the quarantine.
// With `recipients` empty a record that does not decode is removed too, so an
// operator can clear corruption.
Result<bool> quarantine_delete(Spool& spool, std::string_view id, const std::vector<std::string>& recipients);

// Retention: drops each held recipient whose domain's retention (days_for,
// in days; 0 drops at once) has passed at now_ms, deleting messages left
// with none, in write transactions of at most kQuarantinePurgeBatch
// messages. Returns how many messages left the quarantine. Meant to be
// called periodically by the shard's storage writer between batches.
Result<size_t> quarantine_purge(Spool& spool, int64_t now_ms,
                                const std::function<unsigned(std::string_view domain)>& days_for);

// The lower-cased domain of an address ("" when it has no '@').
std::string quarantine_domain_of(std::string_view address);

}  // namespace mxguard::store
