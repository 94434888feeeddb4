// HTML to visible text, streaming: tags, comments, <script>/<style> dropped,
// entities decoded, block tags as line breaks, URL attributes reported.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mxguard::mime {

class HtmlSink {
 public:
  virtual ~HtmlSink() = default;
  // Visible text in UTF-8, in batches (never a split UTF-8 sequence that was
  // whole in the source).
  virtual void html_text(std::string_view text) = 0;
  // The value of an href, src, action or background attribute (entities
  // decoded, surrounding whitespace and embedded tabs/newlines removed).
  // Called after all text that precedes it in the source.
  virtual void html_url(std::string_view url) = 0;
};

class HtmlText {
 public:
  static constexpr size_t kMaxAttrValue = 4096;  // longer URL values are cut

  // Source may be split anywhere (inside a tag, an entity, a UTF-8 sequence).
  void feed(std::string_view source, HtmlSink& sink);
  void finish(HtmlSink& sink);
  void reset();

 private:
  enum class State : uint8_t {
    kText, kTagOpen, kEndTagOpen, kTagName, kBeforeAttr, kAttrName, kAfterAttrName,
    kBeforeValue, kValueDq, kValueSq, kValueBare, kBang, kBangDash, kComment,
    kDeclaration, kRawText, kEntity,
  };
  void emit_char(char c);
  void emit_space(uint8_t kind);
  void flush_text(HtmlSink& sink);
  void tag_done(HtmlSink& sink);
  void attr_done(HtmlSink& sink);
  void entity_done(bool semicolon);
  void value_append(char c);

  State state_ = State::kText;
  State entity_return_ = State::kText;  // where an entity's text goes back to
  bool end_tag_ = false;
  bool capture_value_ = false;  // the current attribute is a URL attribute
  uint8_t pending_space_ = 0;   // 0 none, 1 space, 2 line break
  bool any_text_ = false;       // nothing visible yet: no leading whitespace
  uint8_t comment_dashes_ = 0;
  uint16_t comment_len_ = 0;
  uint8_t raw_matched_ = 0;     // bytes of "</script" or "</style" seen
  std::string_view raw_end_;    // the closing tag being looked for
  std::string tag_;             // lower case, bounded
  std::string attr_;            // lower case, bounded
  std::string value_;           // a URL attribute's value, bounded
  std::string entity_;          // bounded
  std::string out_;             // visible text not yet given to the sink
};

// Decodes an entity name without '&' and ';' ("amp", "#39", "#x27") into
// UTF-8; false when it is not one. &nbsp; becomes a plain space.
bool decode_entity(std::string_view name, std::string& out);

}  // namespace mxguard::mime
