// Transparency for DATA (RFC 5321 4.5.2): dot-stuffing and line-ending
// repair, whole or in pieces for a message sent a chunk at a time.
#include "mxguard/delivery/client.hpp"

namespace mxguard::delivery {

void DotStuffer::feed(std::string_view in, std::string& out) {
  size_t i = 0;
  while (i < in.size()) {
    const char c = in[i];
    if (pending_cr_) {
      // A CR always ends a line: a lone one is completed to CRLF, so the
      // server never sees a bare CR that some would take for a line end.
      pending_cr_ = false;
      out.push_back('\n');
      line_start_ = true;
      if (c == '\n') {
        ++i;
        continue;
      }
    }
    if (c == '\r') {
      out.push_back('\r');
      pending_cr_ = true;
      ++i;
      continue;
    }
    if (c == '\n') {
      out.append("\r\n");
      line_start_ = true;
      ++i;
      continue;
    }
    if (line_start_ && c == '.') out.push_back('.');
    line_start_ = false;
    // Copy the rest of the line in one go; this is the hot path for big bodies.
    size_t end = i;
    while (end < in.size() && in[end] != '\r' && in[end] != '\n') ++end;
    out.append(in.substr(i, end - i));
    i = end;
  }
}

void DotStuffer::finish(std::string& out) {
  if (pending_cr_) {
    out.push_back('\n');
    pending_cr_ = false;
    line_start_ = true;
  }
  if (!line_start_) out.append("\r\n");
  out.append(".\r\n");
  line_start_ = true;
}

std::string dot_stuff(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 32 + 8);
  DotStuffer stuffer;
  stuffer.feed(message, out);
  stuffer.finish(out);
  return out;
}

}  // namespace mxguard::delivery
