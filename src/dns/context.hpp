// Private to the dns module: building a libunbound context that forwards
// only to the configured servers.
#pragma once

#include <string>
#include <string_view>

#include "mxguard/core/result.hpp"
#include "mxguard/dns/resolver.hpp"

namespace mxguard::dns {

// "192.0.2.1:5353" -> "192.0.2.1@5353", "[::1]" -> "::1@53": libunbound's
// forwarder syntax. Errors name the offending entry.
Result<std::string> unbound_address(std::string_view server);

Result<Resolver::Context> make_context(const ResolverOptions& options);

}  // namespace mxguard::dns
