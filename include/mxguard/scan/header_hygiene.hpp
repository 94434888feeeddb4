// Header fields that claim to come from this appliance: a sender must not be
// able to pass them off as ours, so they are removed before ours are added.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace mxguard::scan {

// A byte range [begin, end) of a message: one header field with its folded
// lines and line end.
struct FieldRange {
  size_t begin = 0;
  size_t end = 0;
};

// The fields of the message's own header section that claim to be ours:
// Authentication-Results whose authserv-id is `hostname` (RFC 8601 section
// 5; compared without case and a trailing dot), and every X-MxGuard-* field.
// In order; `message` is the header section followed by the body, with CRLF
// or bare LF line ends. Pure; never reads past the header section.
std::vector<FieldRange> claimed_header_fields(std::string_view message, std::string_view hostname);

// The authserv-id of an Authentication-Results value: after comments and
// white space, a token or a quoted string ("" when there is none).
std::string_view authserv_id(std::string_view value);

}  // namespace mxguard::scan
