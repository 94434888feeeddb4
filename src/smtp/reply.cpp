// Formats SMTP replies; sanitises text so replies stay one line each.
#include "mxguard/smtp/reply.hpp"

#include <fmt/format.h>

namespace mxguard::smtp {

namespace {
void append_text(std::string& out, std::string_view text) {
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back((u < 0x20 || u == 0x7f) ? '?' : c);
  }
}
}  // namespace

void append_reply(std::string& out, int code, std::string_view enhanced, std::string_view text) {
  fmt::format_to(std::back_inserter(out), "{:03d} ", code);
  if (!enhanced.empty()) {
    out.append(enhanced);
    out.push_back(' ');
  }
  append_text(out, text);
  out.append("\r\n");
}

void append_multiline(std::string& out, int code, const std::vector<std::string>& lines) {
  for (size_t i = 0; i < lines.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "{:03d}{}", code, i + 1 < lines.size() ? '-' : ' ');
    append_text(out, lines[i]);
    out.append("\r\n");
  }
}

}  // namespace mxguard::smtp
