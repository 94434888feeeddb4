// Finds incoming header fields that pretend to be this appliance's own
// (RFC 8601 section 5): the engine removes them before adding its headers.
#include "mxguard/scan/header_hygiene.hpp"

#include "mxguard/core/strings.hpp"

namespace mxguard::scan {
namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// Host names compare without case and without a final root dot.
bool same_host(std::string_view a, std::string_view b) {
  if (!a.empty() && a.back() == '.') a.remove_suffix(1);
  if (!b.empty() && b.back() == '.') b.remove_suffix(1);
  return !a.empty() && iequals(a, b);
}

// The end of the line that starts at `at` (after its '\n', or the end).
size_t line_end(std::string_view m, size_t at) {
  size_t nl = m.find('\n', at);
  return nl == std::string_view::npos ? m.size() : nl + 1;
}

}  // namespace

std::string_view authserv_id(std::string_view v) {
  size_t i = 0;
  // CFWS: white space, line ends of folding, and comments (nested, with quoted pairs).
  for (;;) {
    while (i < v.size() && (is_wsp(v[i]) || v[i] == '\r' || v[i] == '\n')) ++i;
    if (i >= v.size() || v[i] != '(') break;
    int depth = 0;
    for (; i < v.size(); ++i) {
      if (v[i] == '\\') {
        ++i;
        continue;
      }
      if (v[i] == '(') ++depth;
      if (v[i] == ')' && --depth == 0) {
        ++i;
        break;
      }
    }
  }
  if (i >= v.size()) return {};
  if (v[i] == '"') {
    size_t end = i + 1;
    while (end < v.size() && v[end] != '"') end += v[end] == '\\' ? 2 : 1;
    return v.substr(i + 1, std::min(end, v.size()) - i - 1);
  }
  size_t end = i;
  while (end < v.size() && v[end] != ';' && v[end] != '(' && !is_wsp(v[end]) && v[end] != '\r' && v[end] != '\n') ++end;
  return v.substr(i, end - i);
}

std::vector<FieldRange> claimed_header_fields(std::string_view m, std::string_view hostname) {
  std::vector<FieldRange> out;
  size_t at = 0;
  while (at < m.size()) {
    const size_t first_end = line_end(m, at);
    std::string_view first = m.substr(at, first_end - at);
    if (first == "\n" || first == "\r\n") break;  // end of the header section
    const size_t colon = first.find(':');
    if (colon == std::string_view::npos || is_wsp(first[0])) break;  // not a header field: the body began
    // The field runs on over its folded lines.
    size_t end = first_end;
    while (end < m.size() && is_wsp(m[end])) end = line_end(m, end);
    std::string_view name = first.substr(0, colon);
    while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
    bool ours = false;
    if (istarts_with(name, "X-MxGuard-")) {
      ours = true;
    } else if (iequals(name, "Authentication-Results")) {
      ours = same_host(authserv_id(m.substr(at + colon + 1, end - at - colon - 1)), hostname);
    }
    if (ours) out.push_back({at, end});
    at = end;
  }
  return out;
}

}  // namespace mxguard::scan
