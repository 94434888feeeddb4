// The DNS reachability probe's packets (no socket here).
#include <doctest.h>

#include "mxguard/dns/probe.hpp"

using namespace mxguard;

TEST_CASE("dns probe: the query is a root NS question with RD") {
  std::string q = dns::probe_query(0xbeef);
  REQUIRE(q.size() == 17);
  CHECK(static_cast<uint8_t>(q[0]) == 0xbe);
  CHECK(static_cast<uint8_t>(q[1]) == 0xef);
  CHECK(static_cast<uint8_t>(q[2]) == 0x01);  // RD, not QR
  CHECK(q.substr(4, 2) == std::string("\x00\x01", 2));  // one question
  CHECK(q.substr(12) == std::string("\x00\x00\x02\x00\x01", 5));  // ".", NS, IN
}

TEST_CASE("dns probe: any response with our id counts, a query or another id does not") {
  std::string q = dns::probe_query(0x1234);
  CHECK_FALSE(dns::is_probe_reply(q, 0x1234));  // our own query echoed: QR clear
  std::string refused = q;
  refused[2] = static_cast<char>(0x81);
  refused[3] = 0x05;  // REFUSED still says a server is there
  CHECK(dns::is_probe_reply(refused, 0x1234));
  CHECK_FALSE(dns::is_probe_reply(refused, 0x1235));
  CHECK_FALSE(dns::is_probe_reply(refused.substr(0, 11), 0x1234));
}
