// IP and CIDR parsing/matching for allow and block lists.
#include "mxguard/core/net.hpp"

#include <arpa/inet.h>

#include <fmt/format.h>

#include "mxguard/core/strings.hpp"

namespace mxguard {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) return ip;
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) {
    ip.v6 = true;
    // An IPv4-mapped IPv6 address is the IPv4 address for matching purposes.
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped, kMapped + 12, ip.bytes.begin())) {
      IpAddress v4;
      std::copy(ip.bytes.begin() + 12, ip.bytes.end(), v4.bytes.begin());
      return v4;
    }
    return ip;
  }
  return std::nullopt;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  size_t slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  unsigned max = ip->v6 ? 128 : 32;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    auto p = parse_u64(text.substr(slash + 1));
    if (!p || *p > max) return std::nullopt;
    prefix = static_cast<unsigned>(*p);
  }
  Cidr c;
  c.base = *ip;
  c.prefix = prefix;
  for (unsigned bit = prefix; bit < max; ++bit) c.base.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  return c;
}

bool Cidr::contains(const IpAddress& ip) const {
  if (ip.v6 != base.v6) return false;
  unsigned full = prefix / 8;
  for (unsigned i = 0; i < full; ++i)
    if (ip.bytes[i] != base.bytes[i]) return false;
  unsigned rest = prefix % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff00u >> rest);
  return (ip.bytes[full] & mask) == base.bytes[full];
}

std::string Cidr::to_string() const { return fmt::format("{}/{}", base.to_string(), prefix); }

}  // namespace mxguard
