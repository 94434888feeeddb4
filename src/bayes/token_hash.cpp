// Bayes: the 64-bit token hash (the model's key). Eight bytes per step with a
// multiply-rotate mix and a final avalanche; stable across hosts because
// input words are read little-endian whatever the CPU.
#include <bit>
#include <cstring>

#include "mxguard/bayes/bayes.hpp"

namespace mxguard::bayes {

namespace {
constexpr uint64_t kMul1 = 0x9E3779B97F4A7C15ull;  // golden ratio: spreads the length into the seed
constexpr uint64_t kMul2 = 0xC2B2AE3D27D4EB4Full;
constexpr uint64_t kSeed = 0x6D78677561726421ull;  // fixed: hashes are stored on disk

inline uint64_t load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

inline uint64_t load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  return v;
}

// The last 1..7 bytes as a little-endian number, from at most two fixed-size
// loads (overlapping bytes are OR-ed with themselves), avoiding a variable
// length memcpy call on every short word.
inline uint64_t load_tail(const char* p, size_t n) {
  if (n >= 4) return load32(p) | (load32(p + n - 4) << (8 * (n - 4)));
  auto byte = [p](size_t i) { return static_cast<uint64_t>(static_cast<unsigned char>(p[i])); };
  return byte(0) | (byte(n / 2) << (8 * (n / 2))) | (byte(n - 1) << (8 * (n - 1)));
}

inline uint64_t mix_word(uint64_t k) { return std::rotl(k * kMul2, 31) * kMul1; }

// Final avalanche so that tokens differing in one byte differ in about half the bits.
inline uint64_t finish(uint64_t h) {
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 33;
  return h;
}
}  // namespace

uint64_t token_hash(std::string_view token) {
  const char* p = token.data();
  size_t n = token.size();
  uint64_t h = kSeed ^ (static_cast<uint64_t>(n) * kMul1);
  for (; n >= 8; p += 8, n -= 8) {
    h ^= mix_word(load64(p));
    h = std::rotl(h, 27) * 5 + 0x52DCE729;
  }
  if (n > 0) h ^= mix_word(load_tail(p, n));
  return finish(h);
}

}  // namespace mxguard::bayes
