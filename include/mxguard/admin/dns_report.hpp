// How the console talks about DNS: the resolver it uses and the wording of
// lookup failures, shared by `domain verify` and `domain check-mx`.
#pragma once

#include <string>
#include <string_view>

#include "mxguard/core/config.hpp"
#include "mxguard/core/result.hpp"
#include "mxguard/dns/resolver.hpp"

namespace mxguard::admin {

// A resolver asking only cfg.dns.servers, bounded by cfg.dns.timeout.
Result<dns::Resolver> make_resolver(const Config& cfg);

// "2s", "1500ms".
std::string format_duration(Millis d);

// Why a lookup of `what` (e.g. "_mxguard-verify.example.com TXT") gave no
// usable answer, in one clause that names the servers where it helps:
// "timed out after 2s (DNS servers: 127.0.0.1:53)".
std::string lookup_failure(const Config& cfg, dns::LookupStatus status, std::string_view error);

}  // namespace mxguard::admin
