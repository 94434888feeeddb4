// Header and streaming body canonicalisation for DKIM.
#include "canon.hpp"

#include <algorithm>
#include <array>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mxguard/core/strings.hpp"

namespace mxguard::dkim::detail {

namespace {

constexpr bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// Bytes that stop the fast scan over ordinary body text: line-end bytes for
// both canonicalisations, and WSP too for relaxed.
constexpr std::array<bool, 256> make_stops(bool wsp) {
  std::array<bool, 256> t{};
  t['\r'] = t['\n'] = true;
  if (wsp) t[' '] = t['\t'] = true;
  return t;
}
constexpr auto kSimpleStops = make_stops(false);
constexpr auto kRelaxedStops = make_stops(true);

constexpr size_t kFlushAt = 32 * 1024;
constexpr size_t kDirectAt = 4 * 1024;

bool is_stop(const std::array<bool, 256>& stops, char c) { return stops[static_cast<unsigned char>(c)]; }

// Skips ahead over bytes scan_span() would accept as they are; returns the
// first position it has to look at itself (a stop byte, except that lone SPs
// between data may be stepped over), or n. Large bodies are mostly long runs
// of such bytes (base64 lines, words), so 16 bytes are checked at a time.
size_t find_stop(const char* p, size_t j, size_t n, const std::array<bool, 256>& stops) {
#if defined(__SSE2__)
  const bool relaxed = stops[' '];
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i sp = _mm_set1_epi8(' ');
  const __m128i tab = _mm_set1_epi8('\t');
  for (; j + 16 <= n; j += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + j));
    const auto line = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf))));
    unsigned stop = line;
    if (relaxed) {
      const auto spaces = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, sp)));
      const auto tabs = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, tab)));
      const unsigned any = line | spaces | tabs;
      // An SP followed by WSP or a line end needs the slow path; so does one
      // in the last lane, whose next byte is not in this block.
      stop = line | tabs | (spaces & ((any >> 1) | 0x8000u));
    }
    if (stop != 0) return j + static_cast<size_t>(__builtin_ctz(stop));
  }
#endif
  while (j < n && !is_stop(stops, p[j])) ++j;
  return j;
}

// Finds the end of a span starting at `i` that is already canonical and can
// be hashed as it is. Besides ordinary bytes it takes a lone SP between data
// (relaxed leaves it alone) and a CRLF between data (a line end that is
// neither after trailing WSP nor before an empty line), so typical text goes
// through in long runs instead of word by word. Anything else ends the span
// and takes the byte-wise path.
size_t scan_span(const char* p, size_t i, size_t n, const std::array<bool, 256>& stops) {
  // A span never starts on a stop byte: a leading SP may continue a WSP run
  // from the previous chunk.
  if (i == n || is_stop(stops, p[i])) return i;
  size_t j = i;
  while (true) {
    j = find_stop(p, j, n, stops);
    if (j == i || j + 2 >= n) return j;
    if (p[j] == ' ' && !is_stop(stops, p[j + 1])) {
      j += 2;
    } else if (p[j] == '\r' && p[j + 1] == '\n' && !is_stop(stops, p[j + 2])) {
      j += 3;
    } else {
      return j;
    }
  }
}

}  // namespace

std::string canon_header(Canon c, std::string_view field) {
  if (c == Canon::kSimple) return std::string(field);
  std::string out;
  out.reserve(field.size());
  const size_t colon = field.find(':');
  std::string_view name = field.substr(0, colon == std::string_view::npos ? field.size() : colon);
  while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
  for (char ch : name) out.push_back(ascii_lower(ch));
  if (colon == std::string_view::npos) {
    out.append("\r\n");
    return out;
  }
  out.push_back(':');
  // Unfold (drop CRLF pairs), squeeze WSP runs to one SP, and drop WSP at
  // both ends of the value: a pending space is written only before data.
  bool space = false;
  bool started = false;
  const std::string_view value = field.substr(colon + 1);
  for (size_t i = 0; i < value.size(); ++i) {
    const char ch = value[i];
    if (ch == '\r' && i + 1 < value.size() && value[i + 1] == '\n') {
      ++i;
      continue;
    }
    if (is_wsp(ch)) {
      space = started;
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    started = true;
    out.push_back(ch);
  }
  out.append("\r\n");
  return out;
}

BodyHasher::BodyHasher(Canon canon, std::optional<uint64_t> limit) : canon_(canon), limit_(limit) {
  buf_.reserve(kFlushAt + kDirectAt);
}

void BodyHasher::emit(const char* data, size_t len) {
  if (limit_) len = static_cast<size_t>(std::min<uint64_t>(len, *limit_ - produced_));
  produced_ += len;
  if (len >= kDirectAt) {
    flush();
    sha_.update(data, len);
    return;
  }
  buf_.append(data, len);
  if (buf_.size() >= kFlushAt) flush();
}

void BodyHasher::flush() {
  sha_.update(buf_);
  buf_.clear();
}

// Data on a line: held-back line ends and a held-back WSP run turn out to be
// inside the body, so they are written first.
void BodyHasher::content(const char* data, size_t len) {
  for (; pending_lines_ != 0 && !limit_reached(); --pending_lines_) emit("\r\n", 2);
  pending_lines_ = 0;
  if (pending_wsp_) {
    emit(" ", 1);
    pending_wsp_ = false;
  }
  emit(data, len);
}

void BodyHasher::update(std::string_view raw) {
  if (finished_) return;
  const char* p = raw.data();
  const size_t n = raw.size();
  const auto& stops = canon_ == Canon::kRelaxed ? kRelaxedStops : kSimpleStops;
  size_t i = 0;
  if (pending_cr_ && n != 0) {
    pending_cr_ = false;
    if (p[0] == '\n') {
      pending_wsp_ = false;
      ++pending_lines_;
      i = 1;
    } else {
      content("\r", 1);
    }
  }
  while (i < n) {
    if (limit_reached()) return;  // the rest of the body cannot change the hash
    const size_t j = scan_span(p, i, n, stops);
    if (j != i) {
      content(p + i, j - i);
      i = j;
      continue;
    }
    const char c = p[i];
    if (c == '\n') {
      // Trailing WSP on a line is dropped (relaxed), and the line end is
      // held back in case only empty lines follow.
      pending_wsp_ = false;
      ++pending_lines_;
      ++i;
    } else if (c == '\r') {
      if (i + 1 == n) {
        pending_cr_ = true;
        ++i;
      } else if (p[i + 1] == '\n') {
        pending_wsp_ = false;
        ++pending_lines_;
        i += 2;
      } else {
        content("\r", 1);
        ++i;
      }
    } else {
      // Relaxed only: a WSP run becomes one SP, written once data follows.
      pending_wsp_ = true;
      while (i < n && is_wsp(p[i])) ++i;
    }
  }
}

void BodyHasher::finish() {
  if (finished_) return;
  if (pending_cr_) {
    pending_cr_ = false;
    content("\r", 1);
  }
  // All trailing empty lines go; a non-empty body ends in exactly one CRLF
  // (added if the last line had none). An empty body is CRLF for simple and
  // nothing for relaxed.
  if (produced_ != 0 || canon_ == Canon::kSimple) {
    if (!limit_reached()) emit("\r\n", 2);
  }
  flush();
  digest_ = sha_.finish();
  finished_ = true;
}

}  // namespace mxguard::dkim::detail
