// Bayes tokenizer: turns the MIME walker's decoded headers, body text, URL
// hosts and attachments into the distinct token hashes of one message.
#include <algorithm>
#include <cstring>

#include "mxguard/bayes/bayes.hpp"
#include "token_set.hpp"
#include "utf8.hpp"

namespace mxguard::bayes {

namespace {
constexpr size_t kMinWord = 3;    // shorter words ("a", "of", "to") carry no signal
constexpr size_t kMaxWord = 40;   // longer "words" are base64, ids, hashes: one skip token each
constexpr size_t kMaxNumber = 6;  // prices, years, percentages; longer digit runs are ids and phone numbers
constexpr size_t kWordBuf = kMaxWord + 4;  // room for the last multibyte character past the limit
constexpr size_t kMaxToken = 160;          // prefix + longest part; longer tokens are cut
constexpr size_t kMaxHeaderValue = 2048;   // bytes of one header value looked at
constexpr size_t kMaxPrefix = 40;

enum : uint8_t { kSep, kAlpha, kDigit, kJoin, kDollar, kPercent };

struct AsciiTable {
  uint8_t cls[128];
  char lower[128];
};

constexpr AsciiTable make_table() {
  AsciiTable t{};
  for (int c = 0; c < 128; ++c) {
    t.cls[c] = kSep;
    t.lower[c] = static_cast<char>(c);
    if (c >= 'A' && c <= 'Z') {
      t.cls[c] = kAlpha;
      t.lower[c] = static_cast<char>(c + 32);
    } else if (c >= 'a' && c <= 'z') {
      t.cls[c] = kAlpha;
    } else if (c >= '0' && c <= '9') {
      t.cls[c] = kDigit;
    }
  }
  // Joiners stay inside a word ("don't", "e-mail", "example.com", "3.5") but
  // never start or end one.
  t.cls[static_cast<int>('.')] = kJoin;
  t.cls[static_cast<int>('-')] = kJoin;
  t.cls[static_cast<int>('\'')] = kJoin;
  t.cls[static_cast<int>('_')] = kJoin;
  t.cls[static_cast<int>('$')] = kDollar;   // "$500" is a classic spam token
  t.cls[static_cast<int>('%')] = kPercent;  // as is "100%"
  return t;
}
constexpr AsciiTable kAscii = make_table();

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
std::string_view cut_utf8(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

bool is_ipv4(std::string_view s) {
  int dots = 0;
  for (char c : s) {
    if (c == '.') ++dots;
    else if (c < '0' || c > '9') return false;
  }
  return dots == 3;
}

// Writes a decimal number; returns the bytes written (buf holds 20).
size_t format_number(size_t v, char* buf) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0);
  for (size_t i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  return n;
}

// Builds one token from pieces in a stack buffer (no allocation per token).
class TokenBuilder {
 public:
  TokenBuilder& add(std::string_view s) {
    size_t n = std::min(s.size(), kMaxToken - len_);
    std::memcpy(buf_ + len_, s.data(), n);
    len_ += n;
    return *this;
  }
  TokenBuilder& add_lower(std::string_view s) {
    size_t n = std::min(s.size(), kMaxToken - len_);
    for (size_t i = 0; i < n; ++i) buf_[len_ + i] = ascii_lower(s[i]);
    len_ += n;
    return *this;
  }
  TokenBuilder& add_number(size_t v) {
    char tmp[20];
    return add({tmp, format_number(v, tmp)});
  }
  std::string_view view() const { return {buf_, len_}; }

 private:
  char buf_[kMaxToken];
  size_t len_ = 0;
};
}  // namespace

struct Tokenizer::Impl {
  TokenSet set;
  size_t header_tokens = 0;
  bool in_header = false;

  // Word splitter state, carried across add_text calls so that a word or a
  // UTF-8 sequence cut between two pieces of decoded text stays whole.
  char prefix[kMaxPrefix];  // prepended to every word token: empty for body text, "subject:" ...
  size_t prefix_len = 0;
  char word[kWordBuf];      // the word so far, lower-cased
  size_t wlen = 0;          // its length in bytes (may exceed the buffer: then only counted)
  unsigned first_len = 0;   // bytes of its first character, for skip tokens
  bool numeric = true;      // digits, '$', '%' and joiners only
  char joiner = 0;          // a joiner after the word, kept only if a word character follows
  unsigned char seq[4];     // a UTF-8 sequence being assembled
  unsigned seq_have = 0, seq_need = 0;
  char ideo_prev[4];        // the previous ideograph of a CJK run
  unsigned ideo_prev_len = 0;
  unsigned ideo_run = 0;

  std::string_view prefix_view() const { return {prefix, prefix_len}; }

  void set_prefix(std::string_view p) {
    prefix_len = std::min(p.size(), kMaxPrefix);
    for (size_t i = 0; i < prefix_len; ++i) prefix[i] = ascii_lower(p[i]);
  }

  void add_token(std::string_view token) {
    if (set.size() >= kMaxTokens) return;
    if (in_header && header_tokens >= kMaxHeaderTokens) return;
    if (set.insert(token_hash(token)) && in_header) ++header_tokens;
  }

  // Calls f(token) for what the splitter holds but has not emitted yet: the
  // current word, or a lone ideograph. Const so hashes() can see it without
  // ending the word.
  template <typename F>
  void pending(F&& f) const {
    if (wlen > 0) {
      TokenBuilder t;
      t.add(prefix_view());
      if (numeric) {
        if (wlen <= kMaxNumber) t.add({word, wlen});
        else t.add("num:").add_number(std::min(wlen, kMaxWord));
        f(t.view());
      } else if (wlen > kMaxWord) {
        // Like SpamBayes: the first character and the length in tens say a
        // lot about a long run (base64, a URL path, a tracking id).
        t.add("skip:").add({word, first_len}).add(":").add_number(std::min<size_t>(wlen / 10 * 10, 1000));
        f(t.view());
      } else if (wlen >= kMinWord) {
        t.add({word, wlen});
        f(t.view());
      }
    }
    if (ideo_run == 1) {
      TokenBuilder t;
      t.add(prefix_view()).add({ideo_prev, ideo_prev_len});
      f(t.view());
    }
  }

  // A separator: emits the pending word and ends any CJK run.
  void boundary() {
    if (prefix_len == 0 && !numeric && wlen >= kMinWord && wlen <= kMaxWord) {
      add_token({word, wlen});  // the common case: a body word is its own token, no copy
    } else if (wlen > 0 || ideo_run == 1) {
      pending([this](std::string_view t) { add_token(t); });
    }
    wlen = 0;
    first_len = 0;
    numeric = true;
    joiner = 0;
    ideo_run = 0;
  }

  // Ends a text run entirely: also drops a half-received UTF-8 sequence.
  void end_run() {
    boundary();
    seq_have = seq_need = 0;
  }

  void push_char(const char* bytes, unsigned n, bool letter) {
    if (ideo_run > 0) boundary();
    if (joiner != 0) {
      // A leading '$' is kept only before a digit ("$500", not "$ave").
      if (wlen > 0 || (joiner == '$' && !letter)) append(&joiner, 1);
      joiner = 0;
    }
    append(bytes, n);
    if (letter) numeric = false;
  }

  void append(const char* bytes, unsigned n) {
    if (wlen == 0) first_len = n;
    if (wlen + n <= kWordBuf) std::memcpy(word + wlen, bytes, n);
    wlen += n;
  }

  void ascii(char c) {
    switch (kAscii.cls[static_cast<unsigned char>(c)]) {
      case kAlpha: {
        char l = kAscii.lower[static_cast<unsigned char>(c)];
        push_char(&l, 1, true);
        break;
      }
      case kDigit:
        push_char(&c, 1, false);
        break;
      case kJoin:
        if (wlen > 0 && joiner == 0 && ideo_run == 0) joiner = c;
        else boundary();  // "--", "..." and leading joiners separate
        break;
      case kDollar:
        if (wlen == 0 && joiner == 0 && ideo_run == 0) joiner = '$';
        else boundary();
        break;
      case kPercent:
        if (wlen > 0 && numeric && joiner == 0) append(&c, 1);
        boundary();
        break;
      default:
        boundary();
    }
  }

  void code_point(char32_t cp) {
    if (char a = utf8::fullwidth_to_ascii(cp)) return ascii(a);
    switch (utf8::classify(cp)) {
      case utf8::CharClass::kIgnorable:
        return;
      case utf8::CharClass::kApostrophe:
        return ascii('\'');
      case utf8::CharClass::kLetter: {
        char buf[4];
        unsigned n = utf8::encode(utf8::to_lower(cp), buf);
        return push_char(buf, n, true);
      }
      case utf8::CharClass::kIdeograph: {
        // CJK text has no spaces: pairs of adjacent characters stand in for words.
        if (wlen > 0) boundary();
        char buf[4];
        unsigned n = utf8::encode(cp, buf);
        if (ideo_run > 0) {
          TokenBuilder t;
          t.add(prefix_view()).add({ideo_prev, ideo_prev_len}).add({buf, n});
          add_token(t.view());
        }
        std::memcpy(ideo_prev, buf, n);
        ideo_prev_len = n;
        ++ideo_run;
        return;
      }
      case utf8::CharClass::kSeparator:
        return boundary();
    }
  }

  void feed(std::string_view text) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    size_t n = text.size();
    for (size_t i = 0; i < n; ++i) {
      unsigned char c = p[i];
      if (seq_need != 0) {
        if ((c & 0xC0) == 0x80) {
          seq[seq_have++] = c;
          if (seq_have == seq_need) {
            seq_need = 0;
            code_point(utf8::decode(seq, seq_have));
          }
          continue;
        }
        seq_need = 0;  // truncated sequence: a separator, then this byte as usual
        boundary();
      }
      if (c < 0x80) {
        uint8_t cls = kAscii.cls[c];
        if ((cls == kAlpha || cls == kDigit) && joiner == 0 && ideo_run == 0) {
          // Fast path: a run of ASCII letters and digits goes straight into the word.
          size_t j = i;
          if (wlen == 0) first_len = 1;
          bool letters = false;
          while (j < n && p[j] < 0x80 && (kAscii.cls[p[j]] == kAlpha || kAscii.cls[p[j]] == kDigit)) {
            if (wlen < kWordBuf) word[wlen] = kAscii.lower[p[j]];
            letters |= kAscii.cls[p[j]] == kAlpha;
            ++wlen;
            ++j;
          }
          if (letters) numeric = false;
          i = j - 1;
        } else if (cls == kSep) {
          // Inline: most bytes between words are spaces and line ends.
          if (wlen > 0 || ideo_run > 0 || joiner != 0) boundary();
        } else {
          ascii(static_cast<char>(c));
        }
        continue;
      }
      unsigned len = utf8::sequence_length(c);
      if (len == 0) {
        boundary();  // stray continuation or invalid lead byte
        continue;
      }
      seq[0] = c;
      seq_have = 1;
      seq_need = len;
    }
  }

  // Tokens of a header value: its words under `prefix`.
  void header_words(std::string_view prefix_text, std::string_view value) {
    set_prefix(prefix_text);
    feed(value);
    end_run();
    prefix_len = 0;
  }

  // "from:addr:user@example.com" for each address in an address header.
  void header_addresses(std::string_view name, std::string_view value) {
    for (size_t at = value.find('@'); at != std::string_view::npos; at = value.find('@', at + 1)) {
      size_t b = at, e = at + 1;
      while (b > 0 && value[b - 1] != '<' && value[b - 1] != ' ' && value[b - 1] != ',' && value[b - 1] != '"' &&
             value[b - 1] != '(' && value[b - 1] != ':' && value[b - 1] != '\t')
        --b;
      while (e < value.size() && is_host_char(value[e])) ++e;
      if (b == at || e == at + 1) continue;
      TokenBuilder t;
      t.add_lower(name).add(":addr:").add_lower(value.substr(b, std::min<size_t>(e - b, 100)));
      add_token(t.view());
    }
  }

  // Host names and /24 networks of the relays a message passed through.
  void header_received(std::string_view value) {
    size_t i = 0;
    while (i < value.size()) {
      while (i < value.size() && !is_host_char(value[i])) ++i;
      size_t b = i;
      while (i < value.size() && is_host_char(value[i])) ++i;
      std::string_view piece = value.substr(b, i - b);
      while (!piece.empty() && (piece.back() == '.' || piece.back() == '-')) piece.remove_suffix(1);
      if (piece.find('.') == std::string_view::npos || piece.size() > 120) continue;
      TokenBuilder t;
      t.add("received:");
      if (is_ipv4(piece)) {
        t.add("ip:").add(piece.substr(0, piece.rfind('.')));
        add_token(t.view());
        continue;
      }
      if (std::none_of(piece.begin(), piece.end(), [](char c) { return c >= 'A' && c <= 'z'; })) continue;
      t.add_lower(piece);
      add_token(t.view());
      size_t last = piece.rfind('.');
      size_t second = last == 0 ? std::string_view::npos : piece.rfind('.', last - 1);
      if (second != std::string_view::npos) {
        TokenBuilder d;
        d.add("received:").add_lower(piece.substr(second + 1));
        add_token(d.view());
      }
    }
  }

  void header_content_type(std::string_view value) {
    std::string_view type = trim(value.substr(0, value.find(';')));
    TokenBuilder t;
    t.add("content-type:").add_lower(type.substr(0, 60));
    add_token(t.view());
    // The charset says which language and which mailer: a useful clue.
    for (size_t p = value.find('='); p != std::string_view::npos; p = value.find('=', p + 1)) {
      size_t b = p;
      while (b > 0 && value[b - 1] != ';' && value[b - 1] != ' ' && value[b - 1] != '\t') --b;
      if (!iequals(trim(value.substr(b, p - b)), "charset")) continue;
      std::string_view cs = value.substr(p + 1);
      cs = trim(cs.substr(0, cs.find(';')));
      if (!cs.empty() && cs.front() == '"') cs.remove_prefix(1);
      if (!cs.empty() && cs.back() == '"') cs.remove_suffix(1);
      TokenBuilder c;
      c.add("charset:").add_lower(cs.substr(0, 40));
      add_token(c.view());
    }
  }

  void header_message_id(std::string_view value) {
    TokenBuilder t;
    t.add("message-id:");
    size_t at = value.rfind('@');
    if (at == std::string_view::npos) {
      t.add("no-at");
    } else {
      std::string_view dom = value.substr(at + 1);
      dom = trim(dom.substr(0, dom.find('>')));
      t.add("@").add_lower(dom.substr(0, 80));
    }
    add_token(t.view());
  }

  void url_host(std::string_view host) {
    while (!host.empty() && host.back() == '.') host.remove_suffix(1);
    if (host.empty()) return;
    host = host.substr(0, 253);
    TokenBuilder t;
    t.add("url:").add_lower(host);
    add_token(t.view());
    if (is_ipv4(host)) {
      add_token("url:ip-literal");
      return;
    }
    // The parent domains too, so a new host under a known domain still counts.
    size_t dot = host.find('.');
    for (int parents = 0; dot != std::string_view::npos && parents < 4; ++parents) {
      std::string_view parent = host.substr(dot + 1);
      if (parent.find('.') == std::string_view::npos) break;
      TokenBuilder p;
      p.add("url:").add_lower(parent);
      add_token(p.view());
      dot = host.find('.', dot + 1);
    }
  }
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

void Tokenizer::add_header(std::string_view name, std::string_view value) {
  Impl& m = *impl_;
  m.end_run();
  name = trim(name).substr(0, kMaxPrefix - 1);
  if (name.empty()) return;
  value = cut_utf8(value, kMaxHeaderValue);
  m.in_header = true;
  // Which headers a message has (and how they are spelt) tells mailers,
  // mailing lists and spamware apart.
  TokenBuilder presence;
  presence.add("header:").add(name);
  m.add_token(presence.view());

  TokenBuilder prefix;
  prefix.add(name).add(":");
  if (iequals(name, "Subject")) {
    m.header_words(prefix.view(), value);
  } else if (iequals(name, "From") || iequals(name, "To") || iequals(name, "Cc") || iequals(name, "Reply-To") ||
             iequals(name, "Sender") || iequals(name, "Return-Path")) {
    m.header_words(prefix.view(), value);
    m.header_addresses(name, value);
  } else if (iequals(name, "Received")) {
    m.header_received(value);
  } else if (iequals(name, "Content-Type")) {
    m.header_content_type(value);
  } else if (iequals(name, "Content-Transfer-Encoding") || iequals(name, "Content-Disposition")) {
    TokenBuilder t;
    t.add(prefix.view()).add_lower(trim(value.substr(0, value.find(';'))).substr(0, 40));
    m.add_token(t.view());
  } else if (iequals(name, "X-Mailer") || iequals(name, "User-Agent") || iequals(name, "X-MimeOLE") ||
             iequals(name, "List-Id") || iequals(name, "Organization")) {
    m.header_words(prefix.view(), value);
  } else if (iequals(name, "Message-ID")) {
    m.header_message_id(value);
  }
  m.in_header = false;
}

void Tokenizer::add_text(std::string_view utf8) { impl_->feed(utf8); }

void Tokenizer::end_text() { impl_->end_run(); }

void Tokenizer::add_url_host(std::string_view host) {
  impl_->end_run();
  impl_->url_host(trim(host));
}

void Tokenizer::add_attachment(std::string_view filename, std::string_view detected_type) {
  Impl& m = *impl_;
  m.end_run();
  TokenBuilder type;
  type.add("attach:type:").add_lower(detected_type.empty() ? "unknown" : detected_type.substr(0, 60));
  m.add_token(type.view());
  filename = trim(cut_utf8(filename, 255));
  if (filename.empty()) {
    m.add_token("attach:name:none");
    return;
  }
  size_t dot = filename.rfind('.');
  if (dot != std::string_view::npos && filename.size() - dot - 1 <= 8 && dot + 1 < filename.size()) {
    TokenBuilder ext;
    ext.add("attach:ext:").add_lower(filename.substr(dot + 1));
    m.add_token(ext.view());
  }
  m.header_words("attach:name:", filename);
}

std::vector<uint64_t> Tokenizer::hashes() const {
  std::vector<uint64_t> out = impl_->set.values();
  size_t room = kMaxTokens > out.size() ? kMaxTokens - out.size() : 0;
  impl_->pending([&](std::string_view t) {
    uint64_t h = token_hash(t);
    if (room > 0 && !impl_->set.contains(h)) {  // so the result stays free of duplicates
      out.push_back(h);
      --room;
    }
  });
  return out;
}

size_t Tokenizer::size() const {
  size_t n = impl_->set.size();
  impl_->pending([&](std::string_view t) {
    if (n < kMaxTokens && !impl_->set.contains(token_hash(t))) ++n;
  });
  return n;
}

}  // namespace mxguard::bayes
