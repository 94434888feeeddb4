// Greylisting triplets in an LMDB env shared by every shard
// (state_dir/greylist). Shards read with short read transactions; the
// storage writers record. Written without fsync: losing a triplet in a crash
// only greylists its sender once more.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mxguard/core/net.hpp"
#include "mxguard/core/result.hpp"
#include "mxguard/store/lmdb.hpp"

namespace mxguard::store {

// The triplet key: the client's /24 (IPv4) or /64 (IPv6), the sender and the
// recipient, lower case.
std::string greylist_key(const IpAddress& client, std::string_view sender, std::string_view recipient);

struct GreylistSeen {
  int64_t first_ms = 0;
  int64_t last_ms = 0;
};

// Whether a triplet first seen `seen` passes at `now`: seen at least
// `min_delay` ago, and last seen within `window`.
bool greylist_passes(const std::optional<GreylistSeen>& seen, int64_t now_ms, int64_t min_delay_ms,
                     int64_t window_ms);

class GreylistStore {
 public:
  static Result<std::unique_ptr<GreylistStore>> open(const std::string& state_dir);
  Result<std::optional<GreylistSeen>> lookup(std::string_view key) const;
  // Records that each key was seen at its time: the first sighting is kept,
  // unless it is older than `window_ms` (then the triplet starts over).
  Status record(const std::vector<std::pair<std::string, int64_t>>& seen, int64_t window_ms);

 private:
  GreylistStore(Env env, MDB_dbi dbi) : env_(std::move(env)), dbi_(dbi) {}
  Env env_;
  MDB_dbi dbi_;
};

}  // namespace mxguard::store
