// Tag=value lists (RFC 6376 §3.2): the shared syntax of DKIM-Signature
// fields and key records. Values keep their offsets so b= can be blanked.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/result.hpp"

namespace mxguard::dkim::detail {

struct Tag {
  std::string_view name;
  std::string_view value;  // leading and trailing FWS removed
  size_t value_begin = 0;  // offset just after '=' in the parsed text
  size_t value_end = 0;    // offset of the closing ';' or the end of the text
};

struct TagList {
  std::vector<Tag> tags;
  const Tag* find(std::string_view name) const;
};

// True for the bytes folding white space is made of (SP, HTAB, CR, LF).
constexpr bool is_fws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
std::string_view trim_fws(std::string_view s);

// Fails on a malformed tag name, a spec without '=', an empty spec between
// semicolons, or a repeated tag (all of which RFC 6376 makes a permerror).
Result<TagList> parse_tag_list(std::string_view text);

// Splits a colon-separated value (h=, q=, k= lists) into FWS-trimmed items.
std::vector<std::string_view> split_colon_list(std::string_view value);

}  // namespace mxguard::dkim::detail
