// Per-client connection and rate limits across shards (exact counts).
#include "conn_limiter.hpp"

#include <netinet/in.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace mxguard::engine {

namespace {
constexpr int64_t kMinuteMs = 60'000;
}

ClientKey client_key(const sockaddr_storage& peer, unsigned ipv6_prefix) {
  ClientKey k;
  if (peer.ss_family == AF_INET6) {
    const uint8_t* a = reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr.s6_addr;
    k.bytes[0] = 6;
    unsigned prefix = ipv6_prefix > 128 ? 128 : ipv6_prefix;
    for (unsigned i = 0; i < 16; ++i) {
      unsigned bits = prefix > i * 8 ? prefix - i * 8 : 0;
      uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
      k.bytes[1 + i] = a[i] & mask;
    }
  } else {
    k.bytes[0] = 4;
    std::memcpy(&k.bytes[1], &reinterpret_cast<const sockaddr_in&>(peer).sin_addr, 4);
  }
  return k;
}

bool RateWindow::take(int64_t now_ms, unsigned limit) {
  if (limit == 0) return true;
  int64_t m = now_ms / kMinuteMs;
  if (m != minute) {
    previous = m == minute + 1 ? current : 0;
    current = 0;
    minute = m;
  }
  // The part of the previous minute that is still inside the last 60 s.
  int64_t into = now_ms - m * kMinuteMs;
  uint64_t weighted = uint64_t{previous} * static_cast<uint64_t>(kMinuteMs - into) / kMinuteMs;
  if (weighted + current >= limit) return false;
  ++current;
  return true;
}

bool RateWindow::stale(int64_t now_ms) const { return now_ms / kMinuteMs > minute + 1 || (current == 0 && previous == 0); }

ConnLimiter::ConnLimiter(Limits limits) : limits_(limits) {
  // A fresh key per start: bucket collisions in the table cannot be computed ahead.
  randombytes_buf(hash_key_.data(), hash_key_.size());
  for (size_t i = 0; i < kStripes; ++i) stripes_.push_back(std::make_unique<Stripe>(this));
}

uint64_t ConnLimiter::hash(const ClientKey& k) const {
  static_assert(crypto_shorthash_KEYBYTES == 16 && crypto_shorthash_BYTES == 8);
  uint64_t h;
  crypto_shorthash(reinterpret_cast<unsigned char*>(&h), k.bytes.data(), k.bytes.size(), hash_key_.data());
  return h;
}

// Entries with no connection and nothing left in either window carry no
// state; dropping them keeps the table as large as the last two minutes' clients.
void ConnLimiter::sweep(Stripe& s, int64_t now_ms) {
  for (auto it = s.clients.begin(); it != s.clients.end();) {
    const Entry& e = it->second;
    if (e.connections == 0 && e.connects.stale(now_ms) && e.messages.stale(now_ms)) it = s.clients.erase(it);
    else ++it;
  }
  s.sweep_at = std::max<size_t>(1024, s.clients.size() * 2);
  s.last_sweep_ms = now_ms;
}

ConnLimiter::Admit ConnLimiter::admit(const ClientKey& client, int64_t now_ms) {
  Stripe& s = stripe_for(client);
  std::lock_guard lock(s.mutex);
  if (s.clients.size() >= s.sweep_at || now_ms - s.last_sweep_ms >= kMinuteMs) sweep(s, now_ms);
  Entry& e = s.clients[client];
  ++e.connections;
  if (e.connections > limits_.per_client) return Admit::kTooManyConnections;
  if (!e.connects.take(now_ms, limits_.connection_rate)) return Admit::kConnectionRate;
  return Admit::kOk;
}

void ConnLimiter::release(const ClientKey& client) {
  Stripe& s = stripe_for(client);
  std::lock_guard lock(s.mutex);
  auto it = s.clients.find(client);
  if (it != s.clients.end() && it->second.connections > 0) --it->second.connections;
}

bool ConnLimiter::take_message(const ClientKey& client, int64_t now_ms) {
  if (limits_.message_rate == 0) return true;
  Stripe& s = stripe_for(client);
  std::lock_guard lock(s.mutex);
  return s.clients[client].messages.take(now_ms, limits_.message_rate);
}

size_t ConnLimiter::tracked() const {
  size_t n = 0;
  for (const auto& s : stripes_) {
    std::lock_guard lock(s->mutex);
    n += s->clients.size();
  }
  return n;
}

}  // namespace mxguard::engine
