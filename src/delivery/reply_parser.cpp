// Incremental parser for SMTP replies (RFC 5321 4.2): bytes in, complete
// multi-line replies out, with the RFC 2034 enhanced status code picked out.
#include <algorithm>
#include <string>

#include "internal.hpp"
#include "mxguard/delivery/client.hpp"

namespace mxguard::delivery {

namespace {

constexpr size_t kMaxLine = 4096;  // octets, without the line ending
constexpr size_t kMaxLines = 128;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Length of the "class.subject.detail" code (RFC 3463 syntax) that starts
// `text`, or 0. Its class must match the reply's, else it is ordinary text.
size_t enhanced_length(std::string_view text, int code) {
  if (text.size() < 5 || text[0] != static_cast<char>('0' + code / 100)) return 0;
  if (text[0] != '2' && text[0] != '4' && text[0] != '5') return 0;
  size_t pos = 1;
  for (int part = 0; part < 2; ++part) {
    if (pos >= text.size() || text[pos] != '.') return 0;
    ++pos;
    size_t digits = 0;
    while (pos < text.size() && is_digit(text[pos]) && digits < 4) {
      ++pos;
      ++digits;
    }
    if (digits == 0 || digits > 3) return 0;
  }
  if (pos < text.size() && text[pos] != ' ') return 0;
  return pos;
}

// Adds one line (line ending removed) to `partial`; true when it ends the reply.
Result<bool> add_line(std::string_view line, Reply& partial) {
  if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]))
    return Error{"reply line does not start with a 3-digit code"};
  const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (code < 200 || code > 599) return Error{"reply code outside 200..599"};
  bool last = true;
  if (line.size() > 3) {
    if (line[3] == '-') last = false;
    else if (line[3] != ' ') return Error{"reply code not followed by a space or '-'"};
  }
  if (partial.lines.empty()) {
    partial.code = code;
  } else if (code != partial.code) {
    return Error{"continuation line with a different reply code"};
  }
  if (partial.lines.size() >= kMaxLines) return Error{"reply of more than 128 lines"};
  std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view{};
  if (partial.lines.empty()) {
    const size_t n = enhanced_length(text, code);
    if (n > 0) partial.enhanced.assign(text.substr(0, n));
  }
  partial.lines.emplace_back(text);
  return last;
}

}  // namespace

std::string Reply::text() const {
  std::string joined;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    // Servers repeat the enhanced code on every line; once is enough in a log.
    if (i > 0 && !enhanced.empty() && line.substr(0, enhanced.size()) == enhanced &&
        (line.size() == enhanced.size() || line[enhanced.size()] == ' '))
      line.remove_prefix(std::min(line.size(), enhanced.size() + 1));
    if (line.empty()) continue;
    if (!joined.empty()) joined.push_back(' ');
    joined.append(line);
  }
  return one_line(joined);
}

Status ReplyParser::feed(std::string_view bytes, std::vector<Reply>& out) {
  if (failed_) return Error{"reply parser failed earlier"};
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t lf = bytes.find('\n', pos);
    const size_t end = lf == std::string_view::npos ? bytes.size() : lf;
    // The +1 leaves room for the CR of a line that is exactly at the limit.
    if (line_.size() + (end - pos) > kMaxLine + 1) {
      failed_ = true;
      return Error{"reply line longer than 4096 octets"};
    }
    line_.append(bytes.substr(pos, end - pos));
    if (lf == std::string_view::npos) break;
    pos = lf + 1;
    std::string_view line = line_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > kMaxLine) {
      failed_ = true;
      return Error{"reply line longer than 4096 octets"};
    }
    Result<bool> last = add_line(line, partial_);
    line_.clear();
    if (!last.ok()) {
      failed_ = true;
      return Error{last.error()};
    }
    if (*last) {
      out.push_back(std::move(partial_));
      partial_ = Reply{};
    }
  }
  return Status::success();
}

}  // namespace mxguard::delivery
