// Per-client limits shared by all shards: concurrent connections, new
// connections per minute and messages per minute. Clients are counted
// exactly, keyed by their address (IPv6 by its /ipv6_prefix network), so no
// client can aim at another's counter; the table's hash is keyed with a
// random key per start, so nobody can aim at one of its buckets either.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "mxguard/core/config.hpp"

namespace mxguard::engine {

// A client as the limits count it: the family, then the IPv4 address or the
// IPv6 network with its host bits cleared.
struct ClientKey {
  std::array<uint8_t, 17> bytes{};
  bool operator==(const ClientKey&) const = default;
};

ClientKey client_key(const sockaddr_storage& peer, unsigned ipv6_prefix);

// A count of events in a sliding minute: this minute's count plus the
// previous minute's, weighted by how much of it still lies in the window.
struct RateWindow {
  int64_t minute = 0;  // index of the current minute
  uint32_t current = 0;
  uint32_t previous = 0;
  // Counts one event at now_ms unless `limit` events already fall in the
  // last minute; a limit of 0 allows everything.
  bool take(int64_t now_ms, unsigned limit);
  bool stale(int64_t now_ms) const;  // nothing left in the window
};

class ConnLimiter {
 public:
  struct Limits {
    unsigned per_client = 50;       // concurrent connections
    unsigned connection_rate = 0;   // new connections per minute (0 = no limit)
    unsigned message_rate = 0;      // messages per minute (0 = no limit)
  };
  enum class Admit : uint8_t { kOk, kTooManyConnections, kConnectionRate };

  explicit ConnLimiter(Limits limits);

  // Counts a new connection (release() undoes it, whatever the answer) and
  // says whether the client is within its limits.
  Admit admit(const ClientKey& client, int64_t now_ms);
  void release(const ClientKey& client);
  // Counts one more message; false when the client is over its rate.
  bool take_message(const ClientKey& client, int64_t now_ms);

  size_t tracked() const;  // clients with an entry (tests, logs)

 private:
  struct Entry {
    uint32_t connections = 0;
    RateWindow connects;
    RateWindow messages;
  };
  struct KeyHash {
    const ConnLimiter* owner;
    size_t operator()(const ClientKey& k) const { return owner->hash(k); }
  };
  struct Stripe {
    mutable std::mutex mutex;
    std::unordered_map<ClientKey, Entry, KeyHash> clients;
    size_t sweep_at = 1024;     // sweep idle entries when the map grows past this,
    int64_t last_sweep_ms = 0;  // or a minute after the last sweep
    explicit Stripe(const ConnLimiter* owner) : clients(16, KeyHash{owner}) {}
  };
  static constexpr size_t kStripes = 64;

  uint64_t hash(const ClientKey& k) const;
  Stripe& stripe_for(const ClientKey& k) { return *stripes_[hash(k) % kStripes]; }
  static void sweep(Stripe& s, int64_t now_ms);

  Limits limits_;
  std::array<uint8_t, 16> hash_key_{};
  std::vector<std::unique_ptr<Stripe>> stripes_;
};

}  // namespace mxguard::engine
