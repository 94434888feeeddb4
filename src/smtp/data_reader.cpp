// Dot-unstuffing and end-of-data detection for DATA (RFC 5321 4.5.2), and the
// same limits for BDAT chunks (RFC 3030). Only CRLF.CRLF ends DATA: a bare LF
// never does, and a bare LF anywhere is flagged so the message can be refused
// (SMTP smuggling defence). A NUL is flagged the same way: without BINARYMIME
// it is not allowed, and a backend that drops NULs before it looks for the end
// of data would read "<CRLF><NUL>.<CRLF>" as one.
#include "mxguard/smtp/data_reader.hpp"

#include <cstring>

namespace mxguard::smtp {

void DataReader::emit(std::string& out, std::string_view bytes) {
  // Every content byte passes here, in both modes; checked before the size
  // limit so the flag does not depend on where the limit cut.
  if (!nul_ && std::memchr(bytes.data(), '\0', bytes.size()) != nullptr) nul_ = true;
  size_ += bytes.size();
  if (too_big_) return;
  if (size_ > limits_.max_size) {
    too_big_ = true;
    return;
  }
  out.append(bytes);
}

void DataReader::end_line() {
  if (line_len_ > limits_.max_line) line_too_long_ = true;
  line_len_ = 0;
}

size_t DataReader::feed_dot(std::string_view in, std::string& out) {
  size_t i = 0;
  const size_t n = in.size();
  while (i < n && state_ != State::kDone) {
    char c = in[i];
    switch (state_) {
      case State::kLineStart:
        if (c == '.') {
          ++line_len_;
          ++i;
          state_ = State::kDot;
          break;
        }
        state_ = State::kMid;
        [[fallthrough]];
      case State::kMid: {
        // Fast path: copy the run of ordinary bytes up to the next CR or LF.
        size_t j = i;
        while (j < n && in[j] != '\r' && in[j] != '\n') ++j;
        if (j > i) {
          emit(out, in.substr(i, j - i));
          line_len_ += j - i;
          if (line_len_ > limits_.max_line) line_too_long_ = true;
          i = j;
          break;
        }
        ++line_len_;
        ++i;
        if (c == '\r') {
          emit(out, "\r");
          state_ = State::kCr;
        } else {
          // A bare LF ends the line for length counting but does not start
          // one for end-of-data purposes: "<LF>.<CR><LF>" must not terminate.
          bare_lf_ = true;
          emit(out, "\n");
          end_line();
          state_ = State::kMid;
        }
        break;
      }
      case State::kCr:
        ++line_len_;
        ++i;
        if (c == '\n') {
          emit(out, "\n");
          end_line();
          state_ = State::kLineStart;
        } else if (c == '\r') {
          emit(out, "\r");
        } else {
          emit(out, std::string_view(&in[i - 1], 1));
          state_ = State::kMid;
        }
        break;
      case State::kDot:
        if (c == '\r') {
          ++line_len_;
          ++i;
          state_ = State::kDotCr;
        } else if (c == '\n') {
          // ".<LF>" is not the terminator; the stuffed dot is dropped.
          ++line_len_;
          ++i;
          bare_lf_ = true;
          emit(out, "\n");
          end_line();
          state_ = State::kMid;
        } else {
          state_ = State::kMid;  // the stuffed dot is dropped; c is ordinary text
        }
        break;
      case State::kDotCr:
        if (c == '\n') {
          ++i;
          line_len_ = 0;
          state_ = State::kDone;
        } else {
          emit(out, "\r");
          state_ = State::kCr;
        }
        break;
      case State::kDone:
        break;
    }
  }
  return i;
}

void DataReader::feed_raw(std::string_view in, std::string& out) {
  emit(out, in);
  for (char c : in) {
    ++line_len_;
    if (c == '\n') {
      if (!raw_cr_) bare_lf_ = true;
      end_line();
    }
    raw_cr_ = (c == '\r');
  }
  if (line_len_ > limits_.max_line) line_too_long_ = true;
}

}  // namespace mxguard::smtp
