// Per-client limits of the engine (src/engine/conn_limiter): exact keys,
// IPv6 networks, sliding-minute rates, and a table that forgets idle clients.
#include <arpa/inet.h>
#include <doctest.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

#include "conn_limiter.hpp"

using mxguard::engine::client_key;
using mxguard::engine::ClientKey;
using mxguard::engine::ConnLimiter;
using mxguard::engine::RateWindow;

namespace {
sockaddr_storage addr(const std::string& ip) {
  sockaddr_storage ss{};
  if (ip.find(':') != std::string::npos) {
    auto& s6 = reinterpret_cast<sockaddr_in6&>(ss);
    s6.sin6_family = AF_INET6;
    REQUIRE(inet_pton(AF_INET6, ip.c_str(), &s6.sin6_addr) == 1);
  } else {
    auto& s4 = reinterpret_cast<sockaddr_in&>(ss);
    s4.sin_family = AF_INET;
    REQUIRE(inet_pton(AF_INET, ip.c_str(), &s4.sin_addr) == 1);
  }
  return ss;
}

ClientKey key(const std::string& ip, unsigned prefix = 64) { return client_key(addr(ip), prefix); }

// The bucket of the limiter this replaced: FNV-1a of the address, low 16 bits.
unsigned old_bucket(const std::string& ip) {
  sockaddr_storage ss = addr(ip);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(&reinterpret_cast<sockaddr_in&>(ss).sin_addr);
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < 4; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return static_cast<unsigned>(h & 0xffff);
}
}  // namespace

TEST_CASE("limiter: IPv6 clients are counted per network, IPv4 per address") {
  CHECK(key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff:ffff:ffff:fffe"));
  CHECK_FALSE(key("2001:db8:1:2::1") == key("2001:db8:1:3::1"));
  CHECK_FALSE(key("2001:db8:1:2::1", 128) == key("2001:db8:1:2::2", 128));
  CHECK(key("2001:db8:1:2::1", 48) == key("2001:db8:1:ffff::1", 48));
  CHECK(key("2001:db8:1:2::1", 60) == key("2001:db8:1:f::1", 60));
  CHECK_FALSE(key("2001:db8:1:2::1", 60) == key("2001:db8:1:12::1", 60));
  CHECK_FALSE(key("192.0.2.1") == key("192.0.2.2"));
  CHECK_FALSE(key("::ffff:192.0.2.1") == key("192.0.2.1"));  // families never share a count
}

TEST_CASE("limiter: two addresses that shared a counter before do not interfere") {
  // Find an address whose old bucket is that of 127.0.0.2 (there are many).
  std::string victim = "127.0.0.2", attacker;
  for (unsigned i = 3; i < (1u << 24) && attacker.empty(); ++i) {
    std::string ip = "127." + std::to_string(i >> 16 & 255) + "." + std::to_string(i >> 8 & 255) + "." +
                     std::to_string(i & 255);
    if (old_bucket(ip) == old_bucket(victim)) attacker = ip;
  }
  REQUIRE_FALSE(attacker.empty());
  ConnLimiter lim({50, 0, 0});
  for (int i = 0; i < 50; ++i) CHECK(lim.admit(key(attacker), 0) == ConnLimiter::Admit::kOk);
  CHECK(lim.admit(key(attacker), 0) == ConnLimiter::Admit::kTooManyConnections);
  CHECK(lim.admit(key(victim), 0) == ConnLimiter::Admit::kOk);
  lim.release(key(attacker));  // the refused one
  lim.release(key(attacker));
  CHECK(lim.admit(key(attacker), 0) == ConnLimiter::Admit::kOk);
}

TEST_CASE("limiter: the connection cap counts a /64 as one client") {
  ConnLimiter lim({3, 0, 0});
  for (int i = 1; i <= 3; ++i) CHECK(lim.admit(key("2001:db8::" + std::to_string(i)), 0) == ConnLimiter::Admit::kOk);
  CHECK(lim.admit(key("2001:db8::ffff"), 0) == ConnLimiter::Admit::kTooManyConnections);
  CHECK(lim.admit(key("2001:db8:0:1::1"), 0) == ConnLimiter::Admit::kOk);
}

TEST_CASE("limiter: rates are counted over a sliding minute") {
  RateWindow w;
  int64_t t0 = 1'700'000'000'000 / 60'000 * 60'000;  // the start of a minute
  for (int i = 0; i < 10; ++i) CHECK(w.take(t0 + i * 1000, 10));
  CHECK_FALSE(w.take(t0 + 59'000, 10));
  CHECK_FALSE(w.take(t0 + 60'000, 10));   // all ten still inside the last minute
  // Half-way into the next minute half of the previous one has slid out.
  int taken = 0;
  while (w.take(t0 + 90'000, 10) && taken < 20) ++taken;
  CHECK(taken == 5);
  CHECK(w.take(t0 + 181'000, 10));  // two minutes later: a fresh start
  RateWindow off;
  for (int i = 0; i < 1000; ++i) CHECK(off.take(t0, 0));
}

TEST_CASE("limiter: connection and message rates per client") {
  ConnLimiter lim({1000, 5, 3});
  ClientKey a = key("192.0.2.1"), b = key("192.0.2.2");
  for (int i = 0; i < 5; ++i) CHECK(lim.admit(a, 1000) == ConnLimiter::Admit::kOk);
  CHECK(lim.admit(a, 2000) == ConnLimiter::Admit::kConnectionRate);
  CHECK(lim.admit(b, 2000) == ConnLimiter::Admit::kOk);
  for (int i = 0; i < 3; ++i) CHECK(lim.take_message(a, 3000));
  CHECK_FALSE(lim.take_message(a, 3000));
  CHECK(lim.take_message(b, 3000));
  CHECK(lim.take_message(a, 200'000));
}

TEST_CASE("limiter: idle clients are forgotten, connected ones are kept") {
  ConnLimiter lim({10, 100, 100});
  for (int i = 0; i < 5000; ++i) {
    ClientKey k = key("10." + std::to_string(i >> 8) + "." + std::to_string(i & 255) + ".1");
    CHECK(lim.admit(k, 0) == ConnLimiter::Admit::kOk);
    if (i != 7) lim.release(k);
  }
  CHECK(lim.tracked() == 5000);
  // Three minutes on, new clients make each stripe sweep its stale entries.
  for (int i = 0; i < 5000; ++i) {
    ClientKey k = key("172.16." + std::to_string(i >> 8) + "." + std::to_string(i & 255));
    lim.admit(k, 180'000);
    lim.release(k);
  }
  CHECK(lim.tracked() < 7000);
  // The one still connected keeps its count: its cap still holds.
  ClientKey held = key("10.0.7.1");
  for (int i = 0; i < 9; ++i) CHECK(lim.admit(held, 200'000) == ConnLimiter::Admit::kOk);
  CHECK(lim.admit(held, 200'000) == ConnLimiter::Admit::kTooManyConnections);
}
