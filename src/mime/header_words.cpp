// RFC 2047 encoded-words in header values: B and Q, adjacent words joined by
// their bytes, malformed words kept, raw 8-bit text read as UTF-8 or cp1252.
#include <string>
#include <string_view>

#include "fields.hpp"
#include "mxguard/core/strings.hpp"
#include "mxguard/mime/charset.hpp"
#include "mxguard/mime/transfer.hpp"

namespace mxguard::mime {
namespace {

struct Word {
  std::string_view charset;  // without an RFC 2231 "*language"
  char encoding;             // 'b' or 'q'
  std::string_view text;
  size_t end;  // index just past "?="
};

bool is_b64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/' || c == '=';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Parses "=?charset?e?text?=" at s[at]; false when it is not a well-formed word.
bool parse_word(std::string_view s, size_t at, Word& w) {
  size_t q1 = s.find('?', at + 2);
  if (q1 == std::string_view::npos || q1 == at + 2 || q1 - at - 2 > 64) return false;
  std::string_view charset = s.substr(at + 2, q1 - at - 2);
  if (charset.find_first_of(" \t\"()<>@,;:\\/[]") != std::string_view::npos) return false;
  if (q1 + 2 >= s.size() || s[q1 + 2] != '?') return false;
  char e = s[q1 + 1];
  if (e == 'B' || e == 'b')
    w.encoding = 'b';
  else if (e == 'Q' || e == 'q')
    w.encoding = 'q';
  else
    return false;
  size_t t = q1 + 3;
  size_t q2 = s.find('?', t);
  if (q2 == std::string_view::npos || q2 + 1 >= s.size() || s[q2 + 1] != '=') return false;
  w.text = s.substr(t, q2 - t);
  if (w.text.find_first_of(" \t\r\n") != std::string_view::npos) return false;
  if (w.encoding == 'b') {
    for (char c : w.text)
      if (!is_b64_char(c)) return false;
  }
  w.charset = charset.substr(0, charset.find('*'));
  w.end = q2 + 2;
  return true;
}

void decode_word_text(const Word& w, std::string& bytes) {
  if (w.encoding == 'b') {
    Base64Decoder d;
    d.decode(w.text, bytes);
    d.finish(bytes);
    return;
  }
  for (size_t i = 0; i < w.text.size(); ++i) {
    char c = w.text[i];
    if (c == '_') {
      bytes.push_back(' ');
    } else if (c == '=' && i + 2 < w.text.size() && hex_value(w.text[i + 1]) >= 0 &&
               hex_value(w.text[i + 2]) >= 0) {
      bytes.push_back(static_cast<char>(hex_value(w.text[i + 1]) * 16 + hex_value(w.text[i + 2])));
      i += 2;
    } else {
      bytes.push_back(c);
    }
  }
}

bool all_space(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}

}  // namespace

void decode_words(std::string_view value, CharsetCache& cache, std::string& out) {
  size_t first = value.find("=?");
  if (first == std::string_view::npos) {
    append_guess_utf8(out, value);
    return;
  }
  std::string bytes;               // decoded bytes of the current run of words
  std::string_view run_charset;    // their charset
  bool have_run = false;
  auto flush_run = [&] {
    if (!have_run) return;
    CharsetDecoder dec;
    dec.start(run_charset, cache);
    dec.convert(bytes, out);
    dec.finish(out);
    bytes.clear();
    have_run = false;
  };
  size_t lit = 0;  // start of literal text not yet written
  size_t at = first;
  while (at != std::string_view::npos) {
    Word w;
    if (!parse_word(value, at, w)) {
      at = value.find("=?", at + 1);
      continue;
    }
    std::string_view between = value.substr(lit, at - lit);
    // Whitespace between two encoded-words is not text (RFC 2047 6.2).
    if (!(have_run && all_space(between))) {
      flush_run();
      append_guess_utf8(out, between);
    }
    if (have_run && run_charset != w.charset && !iequals(run_charset, w.charset)) flush_run();
    run_charset = w.charset;
    have_run = true;
    decode_word_text(w, bytes);
    lit = w.end;
    at = value.find("=?", w.end);
  }
  flush_run();
  append_guess_utf8(out, value.substr(lit));
}

std::string decode_header_words(std::string_view value) {
  CharsetCache cache;
  std::string out;
  decode_words(value, cache, out);
  return out;
}

}  // namespace mxguard::mime
