// URLs in running text (http://, https://, ftp://, www.) found by a streaming
// scanner, and the host part of a URL as the scanner's rules and DNSBL want it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mxguard::mime {

class UrlSink {
 public:
  virtual ~UrlSink() = default;
  virtual void url_found(std::string_view url, std::string_view host) = 0;
};

// Text may be split anywhere. A URL runs to whitespace, a quote, '<' or '>'
// (or a control byte); trailing sentence punctuation is not part of it.
// URLs longer than kMaxUrl are reported cut at kMaxUrl bytes.
class UrlFinder {
 public:
  static constexpr size_t kMaxUrl = 4096;
  void scan(std::string_view text, UrlSink& sink);
  void finish(UrlSink& sink);
  void reset();

 private:
  void end_url(UrlSink& sink);

  uint64_t window_ = 0;      // the last 8 bytes seen, lower-cased
  uint64_t raw_window_ = 0;  // the same bytes as written
  bool in_url_ = false;
  std::string url_;
  std::string host_;
};

// The host of a URL: after "scheme://" or "//" (or the whole authority of a
// "www." URL), without userinfo and port, ASCII lower-cased, IDN bytes kept
// as they are, a trailing dot removed. "" when there is no authority.
std::string url_host(std::string_view url);
void url_host(std::string_view url, std::string& out);  // the same, into a reused buffer

}  // namespace mxguard::mime
