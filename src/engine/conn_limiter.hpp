// Per-client-IP concurrent connection counts shared by all shards: a fixed
// table of atomic counters (lock-free; a hash collision can only make the
// cap stricter, never looser).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>

namespace mxguard::engine {

class ConnLimiter {
 public:
  explicit ConnLimiter(unsigned per_ip_cap);
  // The bucket to release later, or -1 when the client is at its cap.
  int acquire(const sockaddr_storage& peer);
  void release(int bucket);

 private:
  static constexpr size_t kBuckets = size_t{1} << 16;
  unsigned cap_;
  std::unique_ptr<std::atomic<uint32_t>[]> counts_;
};

}  // namespace mxguard::engine
