// The quarantine in a shard's spool env: messages held instead of delivered.
#pragma once

#include <string_view>

#include "mxguard/core/result.hpp"
#include "mxguard/store/envelope.hpp"
#include "mxguard/store/lmdb.hpp"
#include "mxguard/store/spool.hpp"

namespace mxguard::store {

// Stores the quarantined copy of a message for its `quarantined` recipients,
// inside the storage writer's batch transaction.
Status quarantine_store(Txn& txn, const SpoolDbs& dbs, const Envelope& e, std::string_view data);

}  // namespace mxguard::store
