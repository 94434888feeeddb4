// Small byte-string helpers shared by parsers (ASCII only, locale-free).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mxguard {

constexpr char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
std::string to_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);
std::string_view trim(std::string_view s);

// Parses a decimal unsigned integer; rejects signs, spaces and overflow.
std::optional<uint64_t> parse_u64(std::string_view s);

// Parses "30s", "15m", "2h", "7d", "500ms" or a bare number of seconds into
// milliseconds.
std::optional<uint64_t> parse_duration_ms(std::string_view s);

}  // namespace mxguard
