// Query names built from addresses (reverse and DNSBL lookups) and services
// (TLSA), and the check that a name made from untrusted text can be asked at
// all. Pure, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mxguard/core/net.hpp"

namespace mxguard::dns {

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it
// carries, so a dual-stack socket's peer is looked up and matched as IPv4.
IpAddress unmap_v4(const IpAddress& ip);

// "4.3.2.1" for 1.2.3.4; for IPv6 the 32 nibbles, lowest first, dot
// separated (RFC 3596 2.5). Mapped addresses as IPv4. No zone appended.
std::string reversed_labels(const IpAddress& ip);

// reversed_labels() under in-addr.arpa or ip6.arpa: the PTR question.
std::string reverse_name(const IpAddress& ip);

// The TLSA owner name for a TCP service (RFC 6698 3): "_25._tcp.mx.example"
// for host "mx.example" (no trailing dot) and port 25.
std::string tlsa_name(std::string_view host, uint16_t port);

// True when `name` (no trailing dot) can be asked as it is: 1..253 octets,
// labels of 1..63 octets, printable ASCII other than space and backslash
// (a backslash would be read as an escape by the resolver's name parser).
bool is_query_name(std::string_view name);

}  // namespace mxguard::dns
