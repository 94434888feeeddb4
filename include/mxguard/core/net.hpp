// IP addresses and CIDR blocks (IPv4 and IPv6): parsing and matching, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mxguard {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4 uses the first 4
  static std::optional<IpAddress> parse(std::string_view text);
  std::string to_string() const;
};

struct Cidr {
  IpAddress base;  // host bits cleared
  unsigned prefix = 0;
  // "192.0.2.0/24", "2001:db8::/32", or a bare address (a /32 or /128).
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& ip) const;
  std::string to_string() const;
};

}  // namespace mxguard
