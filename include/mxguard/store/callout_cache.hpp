// Recipient callout answers in an LMDB env shared by every shard
// (state_dir/callout), so a second RCPT for the same address never asks the
// backend again while the answer is fresh, whichever shard receives it.
// Written without fsync: a cache lost in a crash only costs a callout.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mxguard/core/result.hpp"
#include "mxguard/store/lmdb.hpp"

namespace mxguard::store {

class CalloutCache {
 public:
  static Result<std::unique_ptr<CalloutCache>> open(const std::string& state_dir);
  // The cached answer for a lower-case address: true = exists, false =
  // unknown; nullopt when absent or expired at `now_ms`.
  Result<std::optional<bool>> lookup(std::string_view address, int64_t now_ms) const;
  Status store(std::string_view address, bool exists, int64_t expires_ms);

 private:
  CalloutCache(Env env, MDB_dbi dbi) : env_(std::move(env)), dbi_(dbi) {}
  Env env_;
  MDB_dbi dbi_;
};

}  // namespace mxguard::store
