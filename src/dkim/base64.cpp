// Whitespace-tolerant base64 decoder (RFC 2045 alphabet, as RFC 6376 uses).
#include "base64.hpp"

#include <array>
#include <cstdint>

#include "tag_list.hpp"

namespace mxguard::dkim::detail {

namespace {

constexpr uint8_t kInvalid = 0xff;

constexpr std::array<uint8_t, 256> make_table() {
  std::array<uint8_t, 256> t{};
  for (auto& v : t) v = kInvalid;
  constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < alphabet.size(); ++i) {
    t[static_cast<unsigned char>(alphabet[i])] = static_cast<uint8_t>(i);
  }
  return t;
}

constexpr auto kTable = make_table();

}  // namespace

std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  unsigned bits = 0;
  size_t symbols = 0;
  size_t padding = 0;
  for (char c : text) {
    if (is_fws(c)) continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    // Data after padding means the value was not one base64 string.
    if (padding != 0) return std::nullopt;
    const uint8_t v = kTable[static_cast<unsigned char>(c)];
    if (v == kInvalid) return std::nullopt;
    acc = (acc << 6) | v;
    bits += 6;
    ++symbols;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // A single leftover symbol carries fewer than 8 bits: not valid base64.
  if (symbols % 4 == 1) return std::nullopt;
  if (padding > 2 || (padding != 0 && (symbols + padding) % 4 != 0)) return std::nullopt;
  return out;
}

}  // namespace mxguard::dkim::detail
