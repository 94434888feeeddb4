// Bayes: byte layouts of the model's LMDB records. Every value starts with a
// version byte; counts are LEB128 varints, so a typical token costs 3 bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mxguard::bayes::codec {

constexpr uint8_t kCountsVersion = 1;   // token and totals records
constexpr uint8_t kLearnedVersion = 1;  // learned-message records

struct Counts {
  uint64_t spam = 0;
  uint64_t ham = 0;
};

// Tokens are keyed by the hash itself in native byte order (an
// MDB_INTEGERKEY database): LMDB then compares keys as integers instead of
// calling memcmp, the largest cost of a lookup, and a sorted batch of lookups
// walks the tree left to right. LMDB files are native-endian anyway.
static_assert(sizeof(size_t) == sizeof(uint64_t), "MDB_INTEGERKEY needs 8-byte size_t for 64-bit keys");

inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

inline bool get_varint(std::string_view in, size_t& at, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && at < in.size(); shift += 7) {
    auto b = static_cast<uint8_t>(in[at++]);
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

inline std::string encode_counts(const Counts& c) {
  std::string out(1, static_cast<char>(kCountsVersion));
  put_varint(out, c.spam);
  put_varint(out, c.ham);
  return out;
}

// nullopt for an unknown version or a corrupt record.
inline std::optional<Counts> decode_counts(std::string_view in) {
  if (in.empty() || static_cast<uint8_t>(in[0]) != kCountsVersion) return std::nullopt;
  size_t at = 1;
  Counts c;
  if (!get_varint(in, at, c.spam) || !get_varint(in, at, c.ham) || at != in.size()) return std::nullopt;
  return c;
}

inline std::string encode_learned(bool spam) {
  return {static_cast<char>(kLearnedVersion), spam ? 's' : 'h'};
}

// The class a message was learned as; nullopt when unknown or corrupt.
inline std::optional<bool> decode_learned(std::string_view in) {
  if (in.size() != 2 || static_cast<uint8_t>(in[0]) != kLearnedVersion) return std::nullopt;
  if (in[1] == 's') return true;
  if (in[1] == 'h') return false;
  return std::nullopt;
}

}  // namespace mxguard::bayes::codec
