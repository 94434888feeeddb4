// HTML to text: a byte-at-a-time tokenizer (after the HTML5 one, much reduced)
// with bulk fast paths for text runs, quoted values, comments and raw text.
#include "mxguard/mime/html.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_map>

#include "mxguard/core/strings.hpp"
#include "mxguard/mime/charset.hpp"

namespace mxguard::mime {
namespace {

constexpr size_t kTextBatch = 8192;

struct NamedEntity {
  std::string_view name;
  uint32_t cp;
};

// Latin-1 names, U+00A0..U+00FF in order; these are also the "legacy" names
// browsers accept without a semicolon.
constexpr std::string_view kLatin1Names[96] = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",
    "uml",    "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",
    "deg",    "plusmn", "sup2",   "sup3",   "acute",  "micro",  "para",   "middot",
    "cedil",  "sup1",   "ordm",   "raquo",  "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc",  "Atilde", "Auml",   "Aring",  "AElig",  "Ccedil",
    "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave", "Iacute", "Icirc",  "Iuml",
    "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde", "Ouml",   "times",
    "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",  "szlig",
    "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
    "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",
    "eth",    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide",
    "oslash", "ugrave", "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml"};

constexpr NamedEntity kOtherEntities[] = {
    {"quot", 34},      {"amp", 38},       {"apos", 39},     {"lt", 60},        {"gt", 62},
    {"OElig", 338},    {"oelig", 339},    {"Scaron", 352},  {"scaron", 353},   {"Yuml", 376},
    {"fnof", 402},     {"circ", 710},     {"tilde", 732},   {"ensp", 8194},    {"emsp", 8195},
    {"thinsp", 8201},  {"zwnj", 8204},    {"zwj", 8205},    {"lrm", 8206},     {"rlm", 8207},
    {"ndash", 8211},   {"mdash", 8212},   {"lsquo", 8216},  {"rsquo", 8217},   {"sbquo", 8218},
    {"ldquo", 8220},   {"rdquo", 8221},   {"bdquo", 8222},  {"dagger", 8224},  {"Dagger", 8225},
    {"bull", 8226},    {"hellip", 8230},  {"permil", 8240}, {"prime", 8242},   {"Prime", 8243},
    {"lsaquo", 8249},  {"rsaquo", 8250},  {"oline", 8254},  {"frasl", 8260},   {"euro", 8364},
    {"trade", 8482},   {"larr", 8592},    {"uarr", 8593},   {"rarr", 8594},    {"darr", 8595},
    {"harr", 8596},    {"spades", 9824},  {"clubs", 9827},  {"hearts", 9829},  {"diams", 9830},
    {"alpha", 945},    {"beta", 946},     {"gamma", 947},   {"delta", 948},    {"pi", 960},
    {"mu", 956},       {"sigma", 963},    {"omega", 969},   {"infin", 8734},   {"ne", 8800},
    {"le", 8804},      {"ge", 8805},      {"minus", 8722},  {"lowast", 8727},  {"radic", 8730},
};

using EntityMap = std::unordered_map<std::string_view, uint32_t>;

const EntityMap& entity_map() {
  static const EntityMap map = [] {
    EntityMap m;
    for (uint32_t i = 0; i < 96; ++i) m.emplace(kLatin1Names[i], 0xA0 + i);
    for (const NamedEntity& e : kOtherEntities) m.emplace(e.name, e.cp);
    return m;
  }();
  return map;
}

bool is_legacy_entity(std::string_view name) {
  if (name == "amp" || name == "lt" || name == "gt" || name == "quot") return true;
  return std::find(std::begin(kLatin1Names), std::end(kLatin1Names), name) != std::end(kLatin1Names);
}

// Browsers read &#128;..&#159; as windows-1252.
constexpr uint16_t kC1Remap[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_alnum(char c) { return is_alpha(c) || (c >= '0' && c <= '9'); }
inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

// Bytes the text fast path copies as they are.
constexpr std::array<bool, 256> make_text_plain() {
  std::array<bool, 256> t{};
  for (auto& v : t) v = true;
  t['<'] = t['&'] = t[' '] = t['\t'] = t['\n'] = t['\r'] = t['\f'] = false;
  return t;
}
constexpr auto kTextPlain = make_text_plain();

// Bytes that continue a tag or attribute name.
constexpr std::array<bool, 256> make_name_plain() {
  std::array<bool, 256> t{};
  for (auto& v : t) v = true;
  t[' '] = t['\t'] = t['\n'] = t['\r'] = t['\f'] = t['/'] = t['>'] = false;
  return t;
}
constexpr auto kNamePlain = make_name_plain();

// Bytes that continue an unquoted attribute value.
constexpr std::array<bool, 256> make_bare_plain() {
  std::array<bool, 256> t{};
  for (auto& v : t) v = true;
  t[' '] = t['\t'] = t['\n'] = t['\r'] = t['\f'] = t['>'] = t['&'] = false;
  return t;
}
constexpr auto kBarePlain = make_bare_plain();

// Tag names packed into an integer (lower case, at most 8 bytes), so the
// per-tag lookups below are integer compares rather than string compares.
constexpr uint64_t pack_tag(std::string_view t) {
  uint64_t v = 0;
  for (char c : t) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}
inline uint64_t pack_tag_checked(std::string_view t) { return t.size() > 8 ? 0 : pack_tag(t); }

// Tags after which text continues on a new line (block level) or after a gap.
bool is_block_tag(std::string_view t) {
  static constexpr uint64_t kBlock[] = {
      pack_tag("p"),       pack_tag("br"),      pack_tag("div"),     pack_tag("li"),
      pack_tag("ul"),      pack_tag("ol"),      pack_tag("tr"),      pack_tag("table"),
      pack_tag("h1"),      pack_tag("h2"),      pack_tag("h3"),      pack_tag("h4"),
      pack_tag("h5"),      pack_tag("h6"),      pack_tag("hr"),      pack_tag("pre"),
      pack_tag("title"),   pack_tag("dd"),      pack_tag("dt"),      pack_tag("dl"),
      pack_tag("section"), pack_tag("article"), pack_tag("header"),  pack_tag("footer"),
      pack_tag("nav"),     pack_tag("center"),  pack_tag("form"),    pack_tag("address"),
      pack_tag("tbody"),   pack_tag("thead"),   pack_tag("tfoot"),   pack_tag("caption"),
      pack_tag("body"),    pack_tag("head"),    pack_tag("html"),    pack_tag("option"),
      pack_tag("select"),  pack_tag("textarea"), pack_tag("iframe"), pack_tag("frame"),
      pack_tag("main"),    pack_tag("aside"),   pack_tag("figure"),  pack_tag("fieldset"),
      pack_tag("legend"),  pack_tag("noscript")};
  if (t == "blockquote" || t == "figcaption") return true;
  const uint64_t v = pack_tag_checked(t);
  if (v == 0) return false;
  for (uint64_t b : kBlock)
    if (v == b) return true;
  return false;
}
bool is_gap_tag(std::string_view t) { return t == "td" || t == "th" || t == "img" || t == "input"; }

bool is_url_attr(std::string_view a) {
  return a == "href" || a == "src" || a == "action" || a == "background";
}

// Values that point nowhere on the network.
bool ignored_url(std::string_view v) {
  return v.front() == '#' || istarts_with(v, "javascript:") || istarts_with(v, "vbscript:") ||
         istarts_with(v, "data:") || istarts_with(v, "cid:") || istarts_with(v, "about:");
}

}  // namespace

bool decode_entity(std::string_view name, std::string& out) {
  if (name.empty()) return false;
  if (name[0] == '#') {
    std::string_view digits = name.substr(1);
    int base = 10;
    if (!digits.empty() && (digits[0] == 'x' || digits[0] == 'X')) {
      base = 16;
      digits.remove_prefix(1);
    }
    if (digits.empty()) return false;
    uint32_t cp = 0;
    for (char c : digits) {
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (base == 16 && c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return false;
      if (cp <= 0x10FFFF) cp = cp * static_cast<uint32_t>(base) + static_cast<uint32_t>(d);
    }
    if (cp == 0) cp = 0xFFFD;
    if (cp >= 0x80 && cp <= 0x9F) cp = kC1Remap[cp - 0x80];
    if (cp == 0xA0) cp = ' ';
    append_utf8(out, cp);
    return true;
  }
  const EntityMap& map = entity_map();
  auto it = map.find(name);
  if (it == map.end()) {
    // "&AMP;", "&NBSP;": upper-case spellings of the common ones are common.
    if (name.size() > 8) return false;
    std::string lower = to_lower(name);
    it = map.find(lower);
    if (it == map.end()) return false;
  }
  // A non-breaking space renders as a space; spammers use it to split words.
  append_utf8(out, it->second == 0xA0 ? ' ' : it->second);
  return true;
}

void HtmlText::reset() {
  state_ = State::kText;
  entity_return_ = State::kText;
  end_tag_ = false;
  capture_value_ = false;
  pending_space_ = 0;
  any_text_ = false;
  comment_dashes_ = 0;
  comment_len_ = 0;
  raw_matched_ = 0;
  raw_end_ = {};
  tag_.clear();
  attr_.clear();
  value_.clear();
  entity_.clear();
  out_.clear();
}

void HtmlText::emit_char(char c) {
  if (pending_space_) {
    if (any_text_) out_.push_back(pending_space_ == 2 ? '\n' : ' ');
    pending_space_ = 0;
  }
  out_.push_back(c);
  any_text_ = true;
}

void HtmlText::emit_space(uint8_t kind) { pending_space_ = std::max(pending_space_, kind); }

void HtmlText::flush_text(HtmlSink& sink) {
  if (!out_.empty()) {
    sink.html_text(out_);
    out_.clear();
  }
}

void HtmlText::value_append(char c) {
  if (capture_value_ && value_.size() < kMaxAttrValue) value_.push_back(c);
}

void HtmlText::attr_done(HtmlSink& sink) {
  if (capture_value_) {
    // Browsers drop surrounding whitespace and any tab or newline inside a URL.
    std::string& v = value_;
    if (v.size() >= kMaxAttrValue) trim_partial_utf8(v);  // cut at the bound: stay UTF-8
    v.erase(std::remove_if(v.begin(), v.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }),
            v.end());
    std::string_view t = trim(v);
    while (!t.empty() && (t.front() == '\f' || t.front() == ' ')) t.remove_prefix(1);
    if (!t.empty() && !ignored_url(t)) {
      flush_text(sink);
      sink.html_url(t);
    }
  }
  capture_value_ = false;
  value_.clear();
  attr_.clear();
}

void HtmlText::tag_done(HtmlSink&) {
  if (is_block_tag(tag_))
    emit_space(2);
  else if (is_gap_tag(tag_))
    emit_space(1);
  state_ = State::kText;
  if (!end_tag_ && (tag_ == "script" || tag_ == "style")) {
    raw_end_ = tag_ == "script" ? "</script" : "</style";
    raw_matched_ = 0;
    state_ = State::kRawText;
  }
}

void HtmlText::entity_done(bool semicolon) {
  const bool in_text = entity_return_ == State::kText;
  std::string decoded;
  bool ok = (semicolon || (entity_.size() > 1 && entity_[0] == '#') ||
             (in_text && is_legacy_entity(entity_))) &&
            decode_entity(entity_, decoded);
  if (!ok) {
    decoded = "&";
    decoded += entity_;
    if (semicolon) decoded.push_back(';');
  }
  for (char c : decoded) {
    if (!in_text)
      value_append(c);
    else if (is_space(c))
      emit_space(1);
    else
      emit_char(c);
  }
  entity_.clear();
  state_ = entity_return_;
}

void HtmlText::feed(std::string_view source, HtmlSink& sink) {
  const char* p = source.data();
  const size_t n = source.size();
  size_t i = 0;
  while (i < n) {
    const char c = p[i];
    switch (state_) {
      case State::kText: {
        size_t j = i;
        while (j < n) {
          if (kTextPlain[static_cast<uint8_t>(p[j])]) {
            ++j;
          } else if (p[j] == ' ' && j > i && j + 1 < n && kTextPlain[static_cast<uint8_t>(p[j + 1])]) {
            j += 2;  // one space between words is already collapsed: keep the run going
          } else {
            break;
          }
        }
        if (j > i) {
          if (pending_space_) {
            if (any_text_) out_.push_back(pending_space_ == 2 ? '\n' : ' ');
            pending_space_ = 0;
          }
          out_.append(p + i, j - i);
          any_text_ = true;
          i = j;
          if (out_.size() >= kTextBatch) flush_text(sink);
          continue;
        }
        if (c == '<') {
          state_ = State::kTagOpen;
        } else if (c == '&') {
          entity_return_ = State::kText;
          state_ = State::kEntity;
        } else {
          emit_space(1);
        }
        ++i;
        break;
      }
      case State::kTagOpen:
        if (is_alpha(c)) {
          tag_.assign(1, ascii_lower(c));
          end_tag_ = false;
          state_ = State::kTagName;
          ++i;
        } else if (c == '/') {
          state_ = State::kEndTagOpen;
          ++i;
        } else if (c == '!') {
          state_ = State::kBang;
          ++i;
        } else if (c == '?') {
          state_ = State::kDeclaration;
          ++i;
        } else {
          emit_char('<');  // "a < b": a plain less-than sign
          state_ = State::kText;
        }
        break;
      case State::kEndTagOpen:
        if (is_alpha(c)) {
          tag_.assign(1, ascii_lower(c));
          end_tag_ = true;
          state_ = State::kTagName;
          ++i;
        } else if (c == '>') {
          state_ = State::kText;
          ++i;
        } else {
          state_ = State::kDeclaration;
        }
        break;
      case State::kTagName: {
        size_t j = i;
        while (j < n && kNamePlain[static_cast<uint8_t>(p[j])]) ++j;
        for (size_t k = i; k < j && tag_.size() < 16; ++k) tag_.push_back(ascii_lower(p[k]));
        i = j;
        if (i == n) break;
        if (p[i] == '>')
          tag_done(sink);
        else
          state_ = State::kBeforeAttr;
        ++i;
        break;
      }
      case State::kBeforeAttr:
        while (i < n && (is_space(p[i]) || p[i] == '/')) ++i;
        if (i == n) break;
        if (p[i] == '>') {
          tag_done(sink);
        } else {
          attr_.assign(1, ascii_lower(p[i]));
          state_ = State::kAttrName;
        }
        ++i;
        break;
      case State::kAttrName:
        if (kNamePlain[static_cast<uint8_t>(c)] && c != '=') {
          size_t j = i;
          while (j < n && kNamePlain[static_cast<uint8_t>(p[j])] && p[j] != '=') ++j;
          for (size_t k = i; k < j && attr_.size() < 32; ++k) attr_.push_back(ascii_lower(p[k]));
          i = j;
          break;
        }
        if (c == '=') {
          capture_value_ = !end_tag_ && is_url_attr(attr_);
          value_.clear();
          state_ = State::kBeforeValue;
        } else if (is_space(c)) {
          state_ = State::kAfterAttrName;
        } else if (c == '>') {
          attr_done(sink);
          tag_done(sink);
        } else if (c == '/') {
          attr_done(sink);
          state_ = State::kBeforeAttr;
        }
        ++i;
        break;
      case State::kAfterAttrName:
        if (c == '=') {
          capture_value_ = !end_tag_ && is_url_attr(attr_);
          value_.clear();
          state_ = State::kBeforeValue;
          ++i;
        } else if (c == '>') {
          attr_done(sink);
          tag_done(sink);
          ++i;
        } else if (is_space(c)) {
          ++i;
        } else {
          attr_done(sink);
          state_ = State::kBeforeAttr;
        }
        break;
      case State::kBeforeValue:
        if (c == '"') {
          state_ = State::kValueDq;
          ++i;
        } else if (c == '\'') {
          state_ = State::kValueSq;
          ++i;
        } else if (c == '>') {
          attr_done(sink);
          tag_done(sink);
          ++i;
        } else if (is_space(c)) {
          ++i;
        } else {
          state_ = State::kValueBare;
        }
        break;
      case State::kValueDq:
      case State::kValueSq: {
        const char quote = state_ == State::kValueDq ? '"' : '\'';
        size_t j = i;
        while (j < n && p[j] != quote && p[j] != '&') ++j;
        if (capture_value_ && value_.size() < kMaxAttrValue)
          value_.append(p + i, std::min(j - i, kMaxAttrValue - value_.size()));
        i = j;
        if (i == n) break;
        if (p[i] == quote) {
          attr_done(sink);
          state_ = State::kBeforeAttr;
        } else {
          entity_return_ = state_;
          state_ = State::kEntity;
        }
        ++i;
        break;
      }
      case State::kValueBare:
        if (kBarePlain[static_cast<uint8_t>(c)]) {
          size_t j = i;
          while (j < n && kBarePlain[static_cast<uint8_t>(p[j])]) ++j;
          if (capture_value_ && value_.size() < kMaxAttrValue)
            value_.append(p + i, std::min(j - i, kMaxAttrValue - value_.size()));
          i = j;
          break;
        }
        if (is_space(c)) {
          attr_done(sink);
          state_ = State::kBeforeAttr;
        } else if (c == '>') {
          attr_done(sink);
          tag_done(sink);
        } else if (c == '&') {
          entity_return_ = State::kValueBare;
          state_ = State::kEntity;
        } else {
          value_append(c);
        }
        ++i;
        break;
      case State::kBang:
        if (c == '-') {
          state_ = State::kBangDash;
          ++i;
        } else {
          state_ = State::kDeclaration;
        }
        break;
      case State::kBangDash:
        if (c == '-') {
          state_ = State::kComment;
          comment_dashes_ = 0;
          comment_len_ = 0;
          ++i;
        } else {
          state_ = State::kDeclaration;
        }
        break;
      case State::kComment: {
        if (comment_dashes_ == 0 && comment_len_ > 1) {
          // Inside the comment body: skip to the next candidate end.
          size_t j = i;
          while (j < n && p[j] != '-' && p[j] != '>') ++j;
          i = j;
          if (i == n) break;
        }
        const char d = p[i];
        if (d == '>') {
          // "-->", and the abrupt "<!-->" / "<!--->" forms, end it.
          if (comment_dashes_ >= 2 || comment_len_ == 0 || (comment_len_ == 1 && comment_dashes_ == 1)) {
            state_ = State::kText;
          } else {
            comment_dashes_ = 0;
          }
        } else if (d == '-') {
          if (comment_dashes_ < 2) ++comment_dashes_;
        } else if (!(d == '!' && comment_dashes_ >= 2)) {  // "--!>" also ends it
          comment_dashes_ = 0;
        }
        if (comment_len_ < 2) ++comment_len_;
        ++i;
        break;
      }
      case State::kDeclaration: {
        const void* gt = std::memchr(p + i, '>', n - i);
        if (!gt) {
          i = n;
          break;
        }
        i = static_cast<size_t>(static_cast<const char*>(gt) - p) + 1;
        state_ = State::kText;
        break;
      }
      case State::kRawText: {
        if (raw_matched_ == 0) {
          const void* lt = std::memchr(p + i, '<', n - i);
          if (!lt) {
            i = n;
            break;
          }
          i = static_cast<size_t>(static_cast<const char*>(lt) - p) + 1;
          raw_matched_ = 1;
          break;
        }
        if (ascii_lower(c) == raw_end_[raw_matched_]) {
          ++i;
          if (++raw_matched_ == raw_end_.size()) {
            tag_.assign(raw_end_.substr(2));
            end_tag_ = true;
            raw_matched_ = 0;
            state_ = State::kBeforeAttr;
          }
        } else {
          raw_matched_ = 0;  // look at c again: it may be the next '<'
        }
        break;
      }
      case State::kEntity:
        if (is_alnum(c) ? entity_.size() < 32
                        : (c == '#' && entity_.empty())) {
          entity_.push_back(c);
          ++i;
        } else if (c == ';') {
          entity_done(true);
          ++i;
        } else {
          entity_done(false);
        }
        break;
    }
  }
  flush_text(sink);
}

void HtmlText::finish(HtmlSink& sink) {
  switch (state_) {
    case State::kEntity:
      entity_done(false);
      if (state_ != State::kText) attr_done(sink);
      break;
    case State::kTagOpen:
      emit_char('<');
      break;
    case State::kValueDq:
    case State::kValueSq:
    case State::kValueBare:
      attr_done(sink);
      break;
    default:
      break;
  }
  flush_text(sink);
  reset();
}

}  // namespace mxguard::mime
