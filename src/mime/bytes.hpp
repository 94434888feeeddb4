// Private to the mime module: byte searches tuned for mail lines, which are
// short (a library memchr call costs more than the scan of 60 bytes).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mxguard::mime {

// First '\n' in [p, end), or nullptr.
inline const char* find_newline(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i nl = _mm_set1_epi8('\n');
  // Up to four vectors inline, then the library for a long line.
  for (int k = 0; k < 4 && end - p >= 16; ++k, p += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const int m = _mm_movemask_epi8(_mm_cmpeq_epi8(v, nl));
    if (m) return p + __builtin_ctz(static_cast<unsigned>(m));
  }
#endif
  return static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
}

// Index of the first '.' or '/' in p[i, n), or n. The two differ only in the
// low bit, so each byte is checked for (b | 1) == '/'.
inline size_t find_dot_or_slash(const uint8_t* p, size_t i, size_t n) {
#if defined(__SSE2__)
  const __m128i one = _mm_set1_epi8(1), slash = _mm_set1_epi8('/');
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const int m = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_or_si128(v, one), slash));
    if (m) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(m)));
  }
#endif
  while (i < n && (p[i] | 1) != '/') ++i;
  return i;
}

}  // namespace mxguard::mime
