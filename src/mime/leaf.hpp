// Private to the mime module: the content pipeline of one leaf part
// (transfer decoding, charset, HTML, URLs, magic bytes) and its events.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "archive.hpp"
#include "mxguard/mime/charset.hpp"
#include "mxguard/mime/html.hpp"
#include "mxguard/mime/transfer.hpp"
#include "mxguard/mime/url.hpp"
#include "mxguard/mime/walker.hpp"

namespace mxguard::mime {

// One leaf is decoded at a time (a leaf never contains another part), so the
// walker keeps a single LeafDecoder and its buffers for the whole message.
class LeafDecoder final : private HtmlSink, private UrlSink {
 public:
  // Output is handed to the handler in pieces of about this size (or one
  // bigger piece when a single decode step produced more).
  static constexpr size_t kFlush = 8u << 10;
  static constexpr size_t kSniffHead = 4u << 10;

  LeafDecoder(Handler& handler, CharsetCache& cache) : handler_(handler), cache_(cache) {}

  // `total` counts decoded bytes over the whole message; past
  // limits.max_decoded the rest of the leaf is dropped and over_budget() turns true.
  void start(const PartInfo& part, uint64_t* total, const Limits& limits);
  // Transfer-encoded content with "\n" line ends, split anywhere.
  void input(const PartInfo& part, std::string_view encoded);
  // Flushes every stage, reports archive members, then on_part_end with the sniffed type.
  void finish(const PartInfo& part);
  bool over_budget() const { return over_; }

 private:
  enum class Cte : uint8_t { kIdentity, kBase64, kQp };

  void html_text(std::string_view text) override;
  void html_url(std::string_view url) override;
  void url_found(std::string_view url, std::string_view host) override;

  void decoded(std::string_view d);
  void consume_utf8(std::string_view u);
  void push_text(std::string_view s);
  void push_html(std::string_view s);
  void push_attachment(std::string_view s);

  Handler& handler_;
  CharsetCache& cache_;
  const PartInfo* part_ = nullptr;
  Cte cte_ = Cte::kIdentity;
  bool text_ = false, html_ = false, attach_ = false, over_ = false;
  TextKind kind_ = TextKind::kPlain;
  uint64_t* total_ = nullptr;
  uint64_t max_ = 0;

  Base64Decoder b64_;
  QpDecoder qp_;
  CharsetDecoder charset_;
  HtmlText html_text_;
  UrlFinder urls_;
  ArchiveLister archive_;
  std::vector<ArchiveMember> members_;

  std::string dec_, utf8_, head_, host_;           // per-step scratch, sniff head
  std::string text_buf_, html_buf_, attach_buf_;  // output not yet handed over
};

}  // namespace mxguard::mime
