// Streaming DATA/BDAT content reader: dot-unstuffing, end-of-data detection and
// size/line limits, fed from receive buffers of any size (a pure byte machine).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mxguard::smtp {

class DataReader {
 public:
  struct Limits {
    uint64_t max_size;  // content beyond this is counted, not stored
    size_t max_line;    // octets per line including CRLF
  };

  explicit DataReader(Limits limits) : limits_(limits) {}

  // DATA mode: consumes bytes up to and including the terminating
  // CRLF.CRLF, appending the unstuffed content (which ends with CRLF) to
  // `out`. Returns how many bytes of `in` were consumed; fewer than
  // in.size() only when done() became true.
  size_t feed_dot(std::string_view in, std::string& out);

  // BDAT mode: all of `in` is content (no stuffing, no terminator).
  void feed_raw(std::string_view in, std::string& out);

  bool done() const { return state_ == State::kDone; }
  bool too_big() const { return too_big_; }
  bool line_too_long() const { return line_too_long_; }
  bool bare_lf() const { return bare_lf_; }
  bool nul() const { return nul_; }  // a NUL octet anywhere in the content
  uint64_t size() const { return size_; }

 private:
  enum class State : uint8_t { kLineStart, kMid, kCr, kDot, kDotCr, kDone };

  void emit(std::string& out, std::string_view bytes);
  void end_line();

  Limits limits_;
  State state_ = State::kLineStart;
  size_t line_len_ = 0;
  uint64_t size_ = 0;
  bool raw_cr_ = false;  // BDAT: previous byte was CR
  bool too_big_ = false;
  bool line_too_long_ = false;
  bool bare_lf_ = false;
  bool nul_ = false;
};

}  // namespace mxguard::smtp
