// Field checks for console input: pure functions that either return the
// normalized value or say, in one line, what is wrong with it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "mxguard/core/result.hpp"

namespace mxguard::admin {

// 1..64 characters of [A-Za-z0-9._-].
Status check_customer_name(std::string_view name);

// A customer's mail server: host name, IPv4, bare IPv6 or [IPv6], with an
// optional port (default 25).
struct Backend {
  std::string host;  // lower case; IPv6 without brackets
  uint16_t port = 25;
};
Result<Backend> parse_backend(std::string_view spec);
// "host:port", with brackets around an IPv6 host.
std::string format_backend(std::string_view host, uint16_t port);

// Checks that `value` is one of `allowed`; `option` names the flag in the error.
Status check_choice(std::string_view option, std::string_view value,
                    std::initializer_list<std::string_view> allowed);

// A relay user for SMTP AUTH: 1..255 printable ASCII characters.
Status check_auth_user(std::string_view user);

// A spool message id: what shard_of_message_id understands, in a safe alphabet.
Status check_message_id(std::string_view id);

// The [Network] lines of a static address for systemd-networkd, from the
// console menu's answers: "ADDRESS/PREFIX" (IPv4 1..32 or IPv6 1..128), an
// optional gateway of the same family, and optional DNS servers (IP
// addresses, space-separated, at most 3). Checked before anything is
// written: a typo here would cut the appliance off its network.
Result<std::string> static_network_lines(std::string_view address, std::string_view gateway,
                                         std::string_view dns);

// True when the last label is all digits: no TLD is, so such a "name" is
// really a mistyped IP address (RFC 3696 section 2).
bool numeric_tld(std::string_view name);

}  // namespace mxguard::admin
