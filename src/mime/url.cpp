// Streaming URL scanner over decoded text and URL host extraction. The scanner
// only stops at '/' and '.', and checks the last 8 bytes for a scheme or "www.".
#include "mxguard/mime/url.hpp"

#include <array>
#include <cstring>

#include "bytes.hpp"
#include "mxguard/mime/charset.hpp"
#include "mxguard/core/strings.hpp"

namespace mxguard::mime {
namespace {

constexpr uint64_t pack(std::string_view s) {
  uint64_t v = 0;
  for (char c : s) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}
constexpr uint64_t mask(size_t bytes) { return bytes >= 8 ? ~0ull : (1ull << (bytes * 8)) - 1; }

constexpr uint64_t kHttp = pack("http://"), kHttps = pack("https://"), kFtp = pack("ftp://"),
                   kWww = pack("www.");

// Bytes that end a URL in running text.
constexpr std::array<bool, 256> make_terminators() {
  std::array<bool, 256> t{};
  for (unsigned c = 0; c < 0x21; ++c) t[c] = true;  // controls and space
  t[0x7F] = true;
  t['"'] = t['\''] = t['<'] = t['>'] = t['`'] = true;
  return t;
}
constexpr auto kTerm = make_terminators();

constexpr std::array<uint8_t, 256> make_lower() {
  std::array<uint8_t, 256> t{};
  for (unsigned c = 0; c < 256; ++c)
    t[c] = static_cast<uint8_t>((c >= 'A' && c <= 'Z') ? c + 32 : c);
  return t;
}
constexpr auto kLower = make_lower();

// May the byte before "www." be there without making it part of a longer word?
bool www_boundary(uint8_t c) {
  if (c == 0) return true;  // start of text
  if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return false;
  return !(c == '.' || c == '-' || c == '_' || c == '@' || c == '/' || c == '%' || c >= 0x80);
}

bool scheme_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '-' || c == '.';
}

}  // namespace

void UrlFinder::reset() {
  window_ = raw_window_ = 0;
  in_url_ = false;
  url_.clear();
}

void UrlFinder::scan(std::string_view text, UrlSink& sink) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (in_url_) {
      size_t j = i;
      while (j < n && !kTerm[p[j]]) ++j;
      if (url_.size() < kMaxUrl) url_.append(text.data() + i, std::min(j - i, kMaxUrl - url_.size()));
      if (j == n) return;
      end_url(sink);
      window_ = kLower[p[j]];  // only the terminator can matter to the next match
      raw_window_ = p[j];
      i = j + 1;
      continue;
    }
    size_t j = find_dot_or_slash(p, i, n);
    size_t upto = j < n ? j + 1 : n;  // the window includes the trigger byte
    if (upto - i >= 8) {
      window_ = raw_window_ = 0;
      i = upto - 8;
    }
    for (size_t k = i; k < upto; ++k) {
      window_ = (window_ << 8) | kLower[p[k]];
      raw_window_ = (raw_window_ << 8) | p[k];
    }
    if (j == n) return;
    i = j + 1;
    size_t start = 0;  // bytes of the window that begin the URL
    if (p[j] == '/') {
      if (window_ == kHttps)
        start = 8;
      else if ((window_ & mask(7)) == kHttp)
        start = 7;
      else if ((window_ & mask(6)) == kFtp)
        start = 6;
    } else if ((window_ & mask(4)) == kWww && www_boundary(static_cast<uint8_t>(window_ >> 32))) {
      start = 4;
    }
    if (start) {
      // The URL keeps the scheme as written (it may have come in an earlier piece).
      url_.clear();
      for (size_t k = start; k-- > 0;) url_.push_back(static_cast<char>(raw_window_ >> (8 * k)));
      in_url_ = true;
    }
  }
}

void UrlFinder::finish(UrlSink& sink) {
  if (in_url_) end_url(sink);
  window_ = raw_window_ = 0;
}

void UrlFinder::end_url(UrlSink& sink) {
  in_url_ = false;
  if (url_.size() >= kMaxUrl) trim_partial_utf8(url_);  // cut at the bound: stay UTF-8
  // Sentence punctuation after a URL is not part of it; a closing bracket is
  // only when the URL does not open one itself.
  while (!url_.empty()) {
    char c = url_.back();
    if (c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?') {
      url_.pop_back();
      continue;
    }
    char open = c == ')' ? '(' : c == ']' ? '[' : c == '}' ? '{' : 0;
    if (open && url_.find(open) == std::string::npos) {
      url_.pop_back();
      continue;
    }
    break;
  }
  url_host(url_, host_);
  if (!host_.empty()) sink.url_found(url_, host_);
  url_.clear();
}

std::string url_host(std::string_view url) {
  std::string out;
  url_host(url, out);
  return out;
}

void url_host(std::string_view url, std::string& out) {
  out.clear();
  size_t start = std::string_view::npos;
  size_t colon = url.find(':');
  if (colon != std::string_view::npos && colon > 0 && url.substr(colon + 1, 2) == "//") {
    bool scheme = true;
    for (size_t k = 0; k < colon; ++k) scheme = scheme && scheme_char(url[k]);
    if (scheme) start = colon + 3;
  }
  if (start == std::string_view::npos) {
    if (url.starts_with("//"))
      start = 2;
    else if (istarts_with(url, "www."))
      start = 0;
    else
      return;
  }
  std::string_view auth = url.substr(start);
  auth = auth.substr(0, auth.find_first_of("/?#\\"));
  if (size_t at = auth.rfind('@'); at != std::string_view::npos) auth.remove_prefix(at + 1);
  std::string_view host;
  if (!auth.empty() && auth.front() == '[') {
    host = auth.substr(1, auth.find(']') - 1);  // IPv6 literal
  } else {
    host = auth.substr(0, auth.find(':'));
  }
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  out.reserve(host.size());
  for (char c : host) out.push_back(ascii_lower(c));
}

}  // namespace mxguard::mime
