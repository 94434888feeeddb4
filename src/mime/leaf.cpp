// The leaf content pipeline: encoded bytes -> transfer decoder -> (decoded-size
// bound, sniff head, attachment data) -> charset -> HTML/URL -> buffered events.
#include "leaf.hpp"

#include <algorithm>

namespace mxguard::mime {
namespace {

// Hands output over in pieces of at least kFlush bytes (the last one of a
// part may be smaller), so handlers see few calls however the input arrived.
template <typename Emit>
void buffered(std::string& buf, std::string_view s, Emit&& emit) {
  if (s.empty()) return;
  if (buf.empty() && s.size() >= LeafDecoder::kFlush) {
    emit(s);  // already big enough: no copy
    return;
  }
  buf.append(s);
  if (buf.size() >= LeafDecoder::kFlush) {
    emit(std::string_view(buf));
    buf.clear();
  }
}

}  // namespace

void LeafDecoder::start(const PartInfo& part, uint64_t* total, const Limits& limits) {
  part_ = &part;
  total_ = total;
  max_ = limits.max_decoded;
  over_ = false;
  const std::string& cte = part.transfer_encoding;
  cte_ = cte == "base64" ? Cte::kBase64 : cte == "quoted-printable" ? Cte::kQp : Cte::kIdentity;
  text_ = part.content_type.starts_with("text/");
  html_ = part.content_type == "text/html";
  kind_ = html_ ? TextKind::kHtml : TextKind::kPlain;
  // A text part sent as a file (a name or "attachment") is also file content
  // for the attachment rules and malware signatures.
  attach_ = !text_ || part.is_attachment;
  b64_.reset();
  qp_.reset();
  html_text_.reset();
  urls_.reset();
  if (text_) charset_.start(part.charset, cache_);
  if (attach_) archive_.start(limits);
  head_.clear();
  text_buf_.clear();
  html_buf_.clear();
  attach_buf_.clear();
}

void LeafDecoder::input(const PartInfo& part, std::string_view encoded) {
  part_ = &part;
  if (over_ || encoded.empty()) return;
  switch (cte_) {
    case Cte::kIdentity:
      decoded(encoded);
      return;
    case Cte::kBase64:
      dec_.clear();
      b64_.decode(encoded, dec_);
      break;
    case Cte::kQp:
      dec_.clear();
      qp_.decode(encoded, dec_);
      break;
  }
  decoded(dec_);
}

void LeafDecoder::finish(const PartInfo& part) {
  part_ = &part;
  if (!over_) {
    dec_.clear();
    if (cte_ == Cte::kBase64) b64_.finish(dec_);
    if (cte_ == Cte::kQp) qp_.finish(dec_);
    if (!dec_.empty()) decoded(dec_);
  }
  if (text_) {
    utf8_.clear();
    charset_.finish(utf8_);
    if (!utf8_.empty()) consume_utf8(utf8_);
    if (html_) html_text_.finish(*this);
    urls_.finish(*this);
  }
  if (!html_buf_.empty()) handler_.on_html(part, html_buf_);
  if (!text_buf_.empty()) handler_.on_text(part, kind_, text_buf_);
  if (!attach_buf_.empty()) handler_.on_attachment_data(part, attach_buf_);
  html_buf_.clear();
  text_buf_.clear();
  attach_buf_.clear();
  const std::string_view type = sniff_type(head_);
  if (attach_) {
    members_.clear();
    archive_.finish(type, cache_, members_);
    for (const ArchiveMember& m : members_) handler_.on_archive_member(part, m);
  }
  handler_.on_part_end(part, type);
}

void LeafDecoder::decoded(std::string_view d) {
  if (over_) return;
  const uint64_t room = max_ > *total_ ? max_ - *total_ : 0;
  if (d.size() > room) {
    d = d.substr(0, static_cast<size_t>(room));
    over_ = true;
  }
  *total_ += d.size();
  if (head_.size() < kSniffHead) head_.append(d.substr(0, std::min(d.size(), kSniffHead - head_.size())));
  if (text_) consume_utf8(charset_.convert_view(d, utf8_));
  if (attach_) {
    archive_.feed(d);
    push_attachment(d);
  }
}

void LeafDecoder::consume_utf8(std::string_view u) {
  if (html_) {
    push_html(u);
    html_text_.feed(u, *this);
  } else {
    urls_.scan(u, *this);
    push_text(u);
  }
}

void LeafDecoder::html_text(std::string_view text) {
  urls_.scan(text, *this);
  push_text(text);
}

void LeafDecoder::html_url(std::string_view url) {
  url_host(url, host_);
  handler_.on_url(*part_, url, host_);
}

void LeafDecoder::url_found(std::string_view url, std::string_view host) {
  handler_.on_url(*part_, url, host);
}

void LeafDecoder::push_text(std::string_view s) {
  buffered(text_buf_, s, [&](std::string_view piece) { handler_.on_text(*part_, kind_, piece); });
}

void LeafDecoder::push_html(std::string_view s) {
  buffered(html_buf_, s, [&](std::string_view piece) { handler_.on_html(*part_, piece); });
}

void LeafDecoder::push_attachment(std::string_view s) {
  buffered(attach_buf_, s, [&](std::string_view piece) { handler_.on_attachment_data(*part_, piece); });
}

}  // namespace mxguard::mime
