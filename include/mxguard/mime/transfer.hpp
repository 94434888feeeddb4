// Streaming Content-Transfer-Encoding decoders (base64, quoted-printable).
// Both take input split anywhere and append decoded bytes to a caller's buffer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mxguard::mime {

// Tolerant base64: whitespace and bytes outside the alphabet are skipped, a
// partial quantum is kept across calls, padding may be missing or early (the
// next symbols start a new quantum, as when two encoded blocks are concatenated).
class Base64Decoder {
 public:
  void decode(std::string_view in, std::string& out);
  // End of input: a dangling quantum of 2 or 3 symbols still yields its bytes.
  void finish(std::string& out);
  void reset() { acc_ = 0; count_ = 0; }

 private:
  uint32_t acc_ = 0;
  unsigned count_ = 0;  // symbols in acc_ (0..3)
};

// Quoted-printable (RFC 2045 6.7) over "\n" line ends: "=XX" (either case),
// soft line breaks (also "=" followed by transport padding), trailing
// whitespace on a line dropped, and invalid escapes passed through as written.
class QpDecoder {
 public:
  void decode(std::string_view in, std::string& out);
  void finish(std::string& out);
  void reset();

 private:
  enum class State : uint8_t { kData, kEq, kEqHex, kEqSpace };
  void flush_space(std::string& out);

  State state_ = State::kData;
  char hex1_ = 0;
  // Whitespace seen but not yet known to be content (it is dropped when the
  // line ends right after it). Bounded: a long run is flushed as content.
  std::string space_;
  std::string eq_space_;  // padding after '=' while a soft break is possible
};

}  // namespace mxguard::mime
