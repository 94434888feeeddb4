// Who gets a digest and what it lists (planning, read-only), and queueing a
// built digest through a shard's delivery queue. `mxguard digest send` and
// the web's link pages build on these.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/result.hpp"
#include "mxguard/digest/message.hpp"
#include "mxguard/store/config_store.hpp"
#include "mxguard/store/spool.hpp"

namespace mxguard::digest {

// The addresses whose quarantine a user sees, the one rule the digest and
// admin::QuarantineScope share: the user's own address and shadow addresses,
// each only when its domain belongs to the user's customer (a shadow in
// another customer's domain is ignored: isolation is absolute). Lower case,
// the own address first, no repeats; empty when the user has no customer.
Result<std::vector<std::string>> user_addresses(const store::ConfigStore& store, const store::User& u);

// The addresses whose quarantine a digest recipient sees: a user's own
// address and their shadow addresses in their customer's domains; for a
// recipient without a user account, that address alone. Lower case.
struct RecipientScope {
  std::string recipient;            // the digest's recipient (a user's address, or a plain recipient)
  std::string user;                 // the user account, "" for a plain recipient
  bool digest_on = true;
  std::vector<std::string> addresses;
};
// The scope of `recipient` as it is now (a link's action applies to the
// held addresses in it).
Result<RecipientScope> recipient_scope(const store::ConfigStore& store, std::string_view recipient);

struct PlannedDigest {
  RecipientScope scope;
  std::string domain;      // the recipient's domain: digest_from, backend
  std::string from;        // digest_from, or postmaster@domain
  int64_t since_ms = 0;    // the last digest's end (0: never)
  std::vector<Entry> entries;  // oldest first
};

struct Plan {
  std::vector<PlannedDigest> digests;  // recipients with something new and their digest on
  // Recipients with new messages and their digest off: their period still
  // moves on, so turning it on later does not send the backlog.
  std::vector<std::string> off;
  int64_t until_ms = 0;  // messages received before this are covered
};

// Reads every shard's quarantine and the config store; writes nothing.
// Messages held for addresses of unknown domains are skipped.
Result<Plan> plan_digests(const store::ConfigStore& store, const std::vector<const store::Spool*>& spools,
                          int64_t until_ms);

// Queues `mail` for `d.scope.recipient` in `spool` (one write transaction,
// the delivery queue's own format via Spool::enqueue) under a new id
// "<time>-d<N>.s<shard>". Returns the id.
Result<std::string> queue_digest(store::Spool& spool, unsigned shard, const PlannedDigest& d, const DigestMail& mail,
                                 int64_t now_ms);

}  // namespace mxguard::digest
