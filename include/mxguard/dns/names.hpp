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

// True when `name`, labels of raw octets separated by dots (no trailing
// dot), fits a DNS question: labels of 1..63 octets and at most 253 octets
// in all (255 in wire form). Any octet other than '.' may be in a label:
// an SPF macro can expand to a space, and the DNS carries it (RFC 2181 11).
bool is_query_name(std::string_view name);

// The presentation form of such a raw name, as the resolvers take it: a
// backslash becomes "\\", a space, a control octet or one above 0x7e
// becomes "\DDD" (RFC 1035 5.1), so libunbound's parser reads back exactly
// the octets we meant; '.' stays the label separator. parse_name() escapes
// names in answers the same way (and folds case), so the two compare.
std::string presentation_name(std::string_view name);

}  // namespace mxguard::dns
