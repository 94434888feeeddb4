// IP and CIDR parsing and matching for allow/block lists.
#include <doctest.h>

#include "mxguard/core/net.hpp"

using mxguard::Cidr;
using mxguard::IpAddress;

TEST_CASE("net: CIDR parsing canonicalises and matches") {
  auto c = Cidr::parse("192.0.2.77/24");
  REQUIRE(c);
  CHECK(c->to_string() == "192.0.2.0/24");
  CHECK(c->contains(*IpAddress::parse("192.0.2.1")));
  CHECK(c->contains(*IpAddress::parse("192.0.2.255")));
  CHECK_FALSE(c->contains(*IpAddress::parse("192.0.3.1")));
  CHECK_FALSE(c->contains(*IpAddress::parse("2001:db8::1")));
  CHECK(c->contains(*IpAddress::parse("::ffff:192.0.2.9")));  // IPv4-mapped
  auto host = Cidr::parse("198.51.100.7");
  REQUIRE(host);
  CHECK(host->prefix == 32);
  CHECK(host->contains(*IpAddress::parse("198.51.100.7")));
  CHECK_FALSE(host->contains(*IpAddress::parse("198.51.100.8")));
  auto v6 = Cidr::parse("2001:DB8:abcd::/36");
  REQUIRE(v6);
  CHECK(v6->to_string() == "2001:db8:a000::/36");
  CHECK(v6->contains(*IpAddress::parse("2001:db8:afff::1")));
  CHECK_FALSE(v6->contains(*IpAddress::parse("2001:db8:b000::1")));
  CHECK(Cidr::parse("0.0.0.0/0")->contains(*IpAddress::parse("203.0.113.5")));
  CHECK(Cidr::parse("10.1.2.3/31")->to_string() == "10.1.2.2/31");
  CHECK(Cidr::parse("::/0")->contains(*IpAddress::parse("::1")));
}

TEST_CASE("net: malformed addresses and prefixes are refused") {
  for (const char* bad : {"", "192.0.2", "192.0.2.1/33", "192.0.2.1/", "192.0.2.1/-1", "2001:db8::/129",
                          "::1/abc", "host.example", "192.0.2.1 ", "1.2.3.4/24/8", "256.1.1.1"})
    CHECK_MESSAGE(!Cidr::parse(bad), bad);
}
