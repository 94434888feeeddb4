// The pure half of the DNSBL and HELO checks: query names, which answers
// count as listings, URL-host reduction and HELO forms. No I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/net.hpp"

namespace mxguard::auth::dnsbl {

// URL hosts asked per message, after reduction and de-duplication.
inline constexpr size_t kMaxHosts = 20;

// "example.org." or ".Example.ORG" -> "example.org"; "" when nothing is left.
std::string normalise_zone(std::string_view zone);

// The IP-list question: reversed octets (IPv4, IPv4-mapped included) or
// reversed nibbles (IPv6) under the zone, e.g. "2.0.0.127.zen.example".
std::string ip_query(const IpAddress& ip, std::string_view zone);

// URL hosts reduced to their organisational domains, lower case, in first
// seen order, each once, at most `cap`. Address literals (domain lists do not
// list them) and names that cannot be asked are left out.
std::vector<std::string> host_keys(const std::vector<std::string>& hosts, size_t cap = kMaxHosts);

// Whether one A answer means "listed": inside 127.0.0.0/8, except the codes
// big lists use to report errors rather than listings: 127.255.255.0/24
// (Spamhaus: query refused, rate limited, typo in the zone), 127.0.1.255
// (Spamhaus DBL: IP queried in a domain list) and 127.0.0.1 (URIBL and SURBL:
// query blocked). Anything outside 127/8 is a wildcard or hijack, not a listing.
bool is_listing(const IpAddress& answer);

}  // namespace mxguard::auth::dnsbl

namespace mxguard::auth::helo {

struct Form {
  bool literal = false;             // "[1.2.3.4]", "[IPv6:...]" or a bare address
  std::optional<IpAddress> address; // the literal's address (IPv4-mapped unmapped)
  bool fqdn = false;                // a syntactically valid host name with at least two labels
  std::string name;                 // lower case, no trailing dot (fqdn only)
};

// Classifies a HELO/EHLO argument (RFC 5321 4.1.3, RFC 1123 2.1 host names).
Form classify(std::string_view helo);

}  // namespace mxguard::auth::helo
