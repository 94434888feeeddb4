// Per-IP connection cap across shards.
#include "conn_limiter.hpp"

#include <netinet/in.h>

namespace mxguard::engine {

ConnLimiter::ConnLimiter(unsigned per_ip_cap)
    : cap_(per_ip_cap), counts_(new std::atomic<uint32_t>[kBuckets]) {
  for (size_t i = 0; i < kBuckets; ++i) counts_[i].store(0, std::memory_order_relaxed);
}

int ConnLimiter::acquire(const sockaddr_storage& peer) {
  const unsigned char* p;
  size_t n;
  if (peer.ss_family == AF_INET6) {
    p = reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr.s6_addr;
    n = 16;
  } else {
    p = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in&>(peer).sin_addr);
    n = 4;
  }
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  int bucket = static_cast<int>(h & (kBuckets - 1));
  if (counts_[bucket].fetch_add(1, std::memory_order_relaxed) >= cap_) {
    counts_[bucket].fetch_sub(1, std::memory_order_relaxed);
    return -1;
  }
  return bucket;
}

void ConnLimiter::release(int bucket) {
  if (bucket >= 0) counts_[bucket].fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace mxguard::engine
