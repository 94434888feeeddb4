// Unit tests for the mime module: each decoder on its own, the walker's
// structure, limits and chunking invariance, archive listing, golden files
// (unit/mime_golden).
#include <doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

// Heap statistics mean nothing under ASan's allocator.
#if defined(__SANITIZE_ADDRESS__)
#define MXG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MXG_ASAN 1
#endif
#endif

#include "mxguard/mime/charset.hpp"
#include "mxguard/mime/html.hpp"
#include "mxguard/mime/transfer.hpp"
#include "mxguard/mime/url.hpp"
#include "mxguard/mime/walker.hpp"

using namespace mxguard::mime;

namespace {

// ---- helpers ----------------------------------------------------------------

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// Printable form for .ref files: escapes controls, quotes and backslashes;
// bytes >= 0x80 too when `high` (binary data), otherwise UTF-8 stays readable.
std::string esc(std::string_view s, bool high = false, size_t max = std::string::npos) {
  std::string o;
  size_t n = 0;
  for (unsigned char c : s) {
    if (n++ >= max) {
      o += "...";
      break;
    }
    if (c == '\n') o += "\\n";
    else if (c == '\t') o += "\\t";
    else if (c == '\\') o += "\\\\";
    else if (c == '"') o += "\\\"";
    else if (c < 0x20 || c == 0x7F || (high && c >= 0x80)) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      o += b;
    } else {
      o.push_back(static_cast<char>(c));
    }
  }
  return o;
}

// Records events in a canonical form: structural events (header, begin, url,
// end, limit) one line each in order; the data streams of a part (text, html,
// attachment) joined and printed before its "end"; the raw body at the very
// end. Piece boundaries of data events depend on chunking, so they are not part
// of the canonical form; their sizes are checked separately.
struct Recorder : Handler {
  std::string log;
  std::map<unsigned, std::string> text, html, data;
  std::map<unsigned, TextKind> kinds;
  std::string raw;
  size_t data_calls = 0;
  size_t max_piece = 0;
  std::vector<std::string> limits;
  std::vector<PartInfo> begun;
  std::vector<std::pair<std::string, std::string>> urls;
  std::vector<std::string> pieces_split_utf8;  // text pieces that end mid-sequence

  static std::string id(const PartInfo& p) {
    return std::to_string(p.index) + "/" + std::to_string(p.depth);
  }
  void line(const std::string& s) {
    log += s;
    log += '\n';
  }
  void piece(std::string_view s) {
    ++data_calls;
    max_piece = std::max(max_piece, s.size());
  }
  void on_header(const PartInfo& p, std::string_view n, std::string_view v) override {
    line("header " + id(p) + " " + std::string(n) + ": " + esc(v));
  }
  void on_part_begin(const PartInfo& p) override {
    std::string f;
    if (p.is_attachment) f += " attachment";
    if (p.is_multipart) f += " multipart";
    if (p.is_message) f += " message";
    line("begin " + id(p) + " " + p.content_type + " charset=" + p.charset + " cte=" + p.transfer_encoding +
         " disp=" + p.disposition + " file=\"" + esc(p.filename) + "\"" + f);
    begun.push_back(p);
  }
  void on_text(const PartInfo& p, TextKind k, std::string_view s) override {
    text[p.index] += s;
    kinds[p.index] = k;
    piece(s);
    // A piece must not end inside a UTF-8 sequence.
    size_t i = s.size();
    size_t back = 0;
    while (i > 0 && back < 4 && (static_cast<uint8_t>(s[i - 1]) & 0xC0) == 0x80) --i, ++back;
    if (i > 0) {
      auto lead = static_cast<uint8_t>(s[i - 1]);
      size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
      if (need > back) pieces_split_utf8.emplace_back(s.substr(s.size() > 8 ? s.size() - 8 : 0));
    }
  }
  void on_html(const PartInfo& p, std::string_view s) override {
    html[p.index] += s;
    piece(s);
  }
  void on_url(const PartInfo& p, std::string_view u, std::string_view h) override {
    line("url " + id(p) + " " + esc(u) + " host=" + esc(h));
    urls.emplace_back(std::string(u), std::string(h));
  }
  void on_attachment_data(const PartInfo& p, std::string_view s) override {
    data[p.index] += s;
    piece(s);
  }
  void on_part_end(const PartInfo& p, std::string_view t) override {
    const unsigned i = p.index;
    if (html.count(i)) line("html " + id(p) + " len=" + std::to_string(html[i].size()) + " fnv=" + std::to_string(fnv1a(html[i])));
    if (text.count(i))
      line("text " + id(p) + (kinds[i] == TextKind::kHtml ? " html" : " plain") + " len=" +
           std::to_string(text[i].size()) + " \"" + esc(text[i], false, 6000) + "\"");
    if (data.count(i))
      line("data " + id(p) + " len=" + std::to_string(data[i].size()) + " fnv=" + std::to_string(fnv1a(data[i])) +
           " \"" + esc(data[i], true, 24) + "\"");
    line("end " + id(p) + " type=" + std::string(t));
    ended_text[i] = text[i];
    ended_data[i] = data[i];
    html.erase(i);
    text.erase(i);
    data.erase(i);
  }
  void on_archive_member(const PartInfo& p, const ArchiveMember& m) override {
    line("member " + id(p) + " " + std::string(m.format) + " \"" + esc(m.name) + "\"" + (m.encrypted ? " encrypted" : ""));
  }
  void on_raw_body(std::string_view s) override { raw += s; }
  void on_limit(LimitHit l) override {
    line("limit " + std::string(to_string(l)));
    limits.emplace_back(to_string(l));
  }
  std::string canonical() const {
    return log + "raw len=" + std::to_string(raw.size()) + " fnv=" + std::to_string(fnv1a(raw)) + "\n";
  }
  std::map<unsigned, std::string> ended_text, ended_data;
};

// How a message is cut into feed() calls.
enum class Cut { kWhole, kBytes, kRandom };

void walk_into(Recorder& r, std::string_view msg, Cut cut, const Limits& lim = {}, unsigned seed = 1) {
  Walker w(r, lim);
  std::mt19937 rng(seed);
  size_t i = 0;
  while (i < msg.size()) {
    size_t n = cut == Cut::kWhole ? msg.size() : cut == Cut::kBytes ? 1 : 1 + rng() % 193;
    w.feed(msg.substr(i, n));
    i += n;
  }
  w.finish();
}

std::string walk(std::string_view msg, Cut cut = Cut::kWhole, const Limits& lim = {}, unsigned seed = 1) {
  Recorder r;
  walk_into(r, msg, cut, lim, seed);
  return r.canonical();
}

// The same message fed whole, byte by byte and in random pieces must give
// the same canonical events.
void check_chunking(std::string_view msg, const Limits& lim = {}) {
  const std::string whole = walk(msg, Cut::kWhole, lim);
  CHECK(walk(msg, Cut::kBytes, lim) == whole);
  for (unsigned seed = 1; seed <= 4; ++seed) CHECK(walk(msg, Cut::kRandom, lim, seed) == whole);
}

std::string crlf(std::string_view s) {
  std::string o;
  for (char c : s) {
    if (c == '\n') o += '\r';
    o += c;
  }
  return o;
}

std::string b64(std::string_view in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string o;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (uint32_t{uint8_t(in[i])} << 16) | (uint32_t{uint8_t(in[i + 1])} << 8) | uint8_t(in[i + 2]);
    for (int k = 3; k >= 0; --k) o += a[(v >> (6 * k)) & 63];
  }
  if (in.size() - i == 1) {
    uint32_t v = uint32_t{uint8_t(in[i])} << 16;
    o += a[v >> 18];
    o += a[(v >> 12) & 63];
    o += "==";
  } else if (in.size() - i == 2) {
    uint32_t v = (uint32_t{uint8_t(in[i])} << 16) | (uint32_t{uint8_t(in[i + 1])} << 8);
    o += a[v >> 18];
    o += a[(v >> 12) & 63];
    o += a[(v >> 6) & 63];
    o += '=';
  }
  return o;
}

// Runs a streaming decoder over `in` split at `at` (and whole).
template <typename Dec>
std::string decode_split(std::string_view in, size_t at) {
  Dec d;
  std::string out;
  at = std::min(at, in.size());
  d.decode(in.substr(0, at), out);
  d.decode(in.substr(at), out);
  d.finish(out);
  return out;
}

template <typename Dec>
std::string decode_bytes(std::string_view in) {
  Dec d;
  std::string out;
  for (char c : in) d.decode(std::string_view(&c, 1), out);
  d.finish(out);
  return out;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct HtmlOut : HtmlSink {
  std::string text;
  std::vector<std::string> urls;
  void html_text(std::string_view t) override { text += t; }
  void html_url(std::string_view u) override { urls.emplace_back(u); }
};

HtmlOut html(std::string_view src, size_t chunk = 0) {
  HtmlOut o;
  HtmlText h;
  if (chunk == 0) chunk = src.size() ? src.size() : 1;
  for (size_t i = 0; i < src.size(); i += chunk) h.feed(src.substr(i, chunk), o);
  h.finish(o);
  return o;
}

struct UrlOut : UrlSink {
  std::vector<std::pair<std::string, std::string>> found;
  void url_found(std::string_view u, std::string_view h) override { found.emplace_back(u, h); }
};

std::vector<std::pair<std::string, std::string>> urls_in(std::string_view text, size_t chunk = 0) {
  UrlOut o;
  UrlFinder f;
  if (chunk == 0) chunk = text.size() ? text.size() : 1;
  for (size_t i = 0; i < text.size(); i += chunk) f.scan(text.substr(i, chunk), o);
  f.finish(o);
  return o.found;
}

std::string convert_split(std::string_view in, std::string_view charset, size_t at) {
  CharsetCache cache;
  CharsetDecoder d;
  d.start(charset, cache);
  std::string out;
  d.convert(in.substr(0, at), out);
  d.convert(in.substr(at), out);
  d.finish(out);
  return out;
}

}  // namespace

// ---- base64 -------------------------------------------------------------------

TEST_CASE("base64: decodes, ignoring whitespace and junk") {
  CHECK(decode_split<Base64Decoder>("SGVsbG8sIHdvcmxkIQ==", 20) == "Hello, world!");
  CHECK(decode_split<Base64Decoder>("SGVs\nbG8s IHdv*cmxk!\tIQ==\n", 30) == "Hello, world!");
  CHECK(decode_split<Base64Decoder>("", 0).empty());
}

TEST_CASE("base64: partial quanta across chunks, missing and early padding") {
  const std::string enc = "SGVsbG8sIHdvcmxkIQ==\nVGhpcyBpcyBiYXNlNjQ=\n";
  const std::string want = "Hello, world!This is base64";
  for (size_t at = 0; at <= enc.size(); ++at) CHECK(decode_split<Base64Decoder>(enc, at) == want);
  CHECK(decode_bytes<Base64Decoder>(enc) == want);
  CHECK(decode_split<Base64Decoder>("SGk", 1) == "Hi");          // no padding: finish() completes
  CHECK(decode_split<Base64Decoder>("SGk=SGk=", 5) == "HiHi");   // padding then more symbols
  CHECK(decode_split<Base64Decoder>("SGVsbG8=Q", 9) == "Hello");  // a lone symbol holds no byte
}

// ---- quoted-printable -------------------------------------------------------

TEST_CASE("qp: escapes, soft breaks, trailing whitespace, invalid escapes") {
  CHECK(decode_split<QpDecoder>("caf=C3=A9 =c3=a9", 3) == "café é");
  CHECK(decode_split<QpDecoder>("abc=\ndef", 2) == "abcdef");
  CHECK(decode_split<QpDecoder>("abc= \t \ndef", 2) == "abcdef");       // soft break with padding
  CHECK(decode_split<QpDecoder>("a  =\nb", 1) == "a  b");               // blanks before '=' are text
  CHECK(decode_split<QpDecoder>("abc  \ndef\t\nx", 4) == "abc\ndef\nx");  // trailing blanks dropped
  CHECK(decode_split<QpDecoder>("end  ", 2) == "end");
  CHECK(decode_split<QpDecoder>("a=ZZb 100=% x=4\n=4", 3) == "a=ZZb 100=% x=4\n=4");
  CHECK(decode_split<QpDecoder>("a = b", 1) == "a = b");
  CHECK(decode_split<QpDecoder>("trailing=", 4) == "trailing");
}

TEST_CASE("qp: any split gives the same bytes") {
  const std::string enc = "Caf=E9 cr=E8me =\nbr=FBl=E9e  \n=3D=3d =Zq =\t\n tail=4";
  const std::string whole = decode_split<QpDecoder>(enc, enc.size());
  CHECK(whole == "Caf\xE9 cr\xE8me br\xFBl\xE9\x65\n== =Zq  tail=4");
  for (size_t at = 0; at <= enc.size(); ++at) CHECK(decode_split<QpDecoder>(enc, at) == whole);
  CHECK(decode_bytes<QpDecoder>(enc) == whole);
}

// ---- charsets ---------------------------------------------------------------

TEST_CASE("charset: latin-1, windows-1252, UTF-8 and replacement") {
  CHECK(to_utf8("caf\xE9", "ISO-8859-1") == "café");
  CHECK(to_utf8("\x80 \x93q\x94", "windows-1252") == "€ “q”");
  CHECK(to_utf8("\x80", "latin1") == "€");  // "latin-1" in mail is windows-1252
  CHECK(to_utf8("a\xFF" "b", "utf-8") == "a\xEF\xBF\xBD" "b");
  CHECK(to_utf8("\xC0\xAF", "utf-8") == "\xEF\xBF\xBD\xEF\xBF\xBD");      // overlong
  CHECK(to_utf8("\xED\xA0\x80", "utf-8").find("\xED\xA0") == std::string::npos);  // surrogate
  CHECK(to_utf8("ok \xF0\x9F\x98\x80", "UTF8") == "ok \xF0\x9F\x98\x80");
  CHECK(to_utf8("\xE2\x82", "utf-8") == "\xEF\xBF\xBD");  // truncated at the end
}

TEST_CASE("charset: unknown or absent charsets pass UTF-8 and read the rest as windows-1252") {
  CHECK(to_utf8("caf\xC3\xA9 \xE9t\xE9", "x-no-such-charset") == "café été");
  CHECK(to_utf8("caf\xC3\xA9 \xE9t\xE9", "") == "café été");
  CHECK(to_utf8("\x93quoted\x94", "us-ascii") == "“quoted”");
  CHECK(to_utf8("plain", "\"bogus name with spaces\"") == "plain");
}

TEST_CASE("charset: iconv charsets") {
  CHECK(to_utf8("\xB1\xE6", "iso-8859-2") == "ąć");
  CHECK(to_utf8("\xF0\xD2\xC9\xD7\xC5\xD4", "koi8-r") == "Привет");
  CHECK(to_utf8("\x82\xA0\x82\xA2", "shift_jis") == "あい");
  CHECK(to_utf8("\xC4\xE3\xBA\xC3", "gb2312") == "你好");
  CHECK(to_utf8("\xBE\xC8\xB3\xE7", "ks_c_5601-1987") == "안녕");
  CHECK(to_utf8("\x1B$B$\"\x1B(B ok", "ISO-2022-JP") == "あ ok");
  CHECK(to_utf8(std::string_view("h\0i\0", 4), "utf-16le") == "hi");
  CHECK(to_utf8("\xA4\xA4 A", "big5") == "中 A");
  CHECK(to_utf8("a\x82", "shift_jis") == "a\xEF\xBF\xBD");            // lead byte without trail
  CHECK(to_utf8("\x82\x20", "shift_jis").find("\xEF\xBF\xBD") != std::string::npos);
}

TEST_CASE("charset: a multibyte sequence split between calls converts the same") {
  struct Case {
    std::string bytes, charset;
  };
  const Case cases[] = {
      {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xFF end", "utf-8"},
      {"caf\xC3\xA9 \xE9 \xE2\x82\xAC", ""},
      {"\x82\xA0\x82\xA2 abc \x93\xFA\x96\x7B", "shift_jis"},
      {"\xC4\xE3\xBA\xC3 \x81\x30\x81\x30 x", "gb18030"},
      {"\x1B$B$\"$$\x1B(B ok \x1B$B$&\x1B(B", "iso-2022-jp"},
      {std::string("h\0\xE9\0\xAC\x20", 6), "utf-16le"},
      {"\xF0\xD2\xC9 plain", "koi8-r"},
  };
  for (const Case& c : cases) {
    const std::string whole = to_utf8(c.bytes, c.charset);
    for (size_t at = 0; at <= c.bytes.size(); ++at) CHECK(convert_split(c.bytes, c.charset, at) == whole);
    CharsetCache cache;
    CharsetDecoder d;
    d.start(c.charset, cache);
    std::string out;
    for (char ch : c.bytes) d.convert(std::string_view(&ch, 1), out);
    d.finish(out);
    CHECK(out == whole);
  }
}

TEST_CASE("charset: cutting UTF-8 at a byte bound keeps it valid") {
  std::string s = "ab\xE2\x82";
  trim_partial_utf8(s);
  CHECK(s == "ab");
  s = "ab\xE2\x82\xAC";
  trim_partial_utf8(s);
  CHECK(s == "ab\xE2\x82\xAC");
  s = "\xF0\x9F\x98";
  trim_partial_utf8(s);
  CHECK(s.empty());
  std::string html_src = "<a href=\"http://x.example/" + std::string(HtmlText::kMaxAttrValue - 20, 'a') + "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\">";
  for (size_t pad = 0; pad < 4; ++pad) {
    auto o = html(html_src.insert(10, "b"));
    REQUIRE(o.urls.size() == 1);
    std::string u = o.urls[0];
    trim_partial_utf8(u);
    CHECK(u == o.urls[0]);
  }
}

TEST_CASE("charset: names and the handle cache") {
  CHECK(normalize_charset(" \"UTF8\" ") == "utf-8");
  CHECK(normalize_charset("ISO8859-2") == "iso-8859-2");
  CHECK(normalize_charset("iso_8859-15") == "iso-8859-15");
  CHECK(normalize_charset("KS_C_5601-1987") == "cp949");
  CHECK(normalize_charset("x-sjis") == "cp932");
  CHECK(normalize_charset("bad/name").empty());
  CharsetCache cache;
  void* a = cache.get("koi8-r");
  CHECK(a != nullptr);
  CHECK(cache.get("koi8-r") == a);
  CHECK(cache.get("no-such-charset-x") == nullptr);
  for (int i = 0; i < 100; ++i) cache.get("x-bogus-" + std::to_string(i));  // bounded, no crash
}

// ---- RFC 2047 ---------------------------------------------------------------

TEST_CASE("rfc2047: B and Q words, joined when adjacent") {
  CHECK(decode_header_words("=?utf-8?B?w6l0w6k=?=") == "été");
  CHECK(decode_header_words("=?ISO-8859-1?Q?caf=E9_au_lait?=") == "café au lait");
  CHECK(decode_header_words("=?utf-8?q?a?= =?utf-8?q?b?=") == "ab");
  CHECK(decode_header_words("=?utf-8?q?a?=\t\t =?UTF-8?Q?b?=") == "ab");
  CHECK(decode_header_words("=?utf-8?q?a?= x =?utf-8?q?b?=") == "a x b");
  CHECK(decode_header_words("Re: =?iso-8859-1?q?h=E9?= there") == "Re: hé there");
  // A character split across two words (€ = E2 82 AC).
  CHECK(decode_header_words("=?utf-8?B?4oI=?= =?utf-8?B?rA==?=") == "€");
  CHECK(decode_header_words("=?shift_jis?B?gqA=?=") == "あ");
  CHECK(decode_header_words("=?utf-8*en?q?hi?=") == "hi");  // RFC 2231 language
  CHECK(decode_header_words("=?utf-8?b?w6k?=") == "é");       // missing padding
  CHECK(decode_header_words("x=?utf-8?q?y?=z") == "xyz");     // glued to text: decoded anyway
}

TEST_CASE("rfc2047: malformed words are left as written") {
  for (const char* s : {"=?utf-8?x?abc?=", "=?utf-8?q?unterminated", "=?utf-8?b?!!!?=", "=??q?a?=",
                        "=?utf-8?q?has space?=", "=?", "a =? b ?= c"})
    CHECK(decode_header_words(s) == s);
  CHECK(decode_header_words("=?x-unknown?q?caf=C3=A9?=") == "café");
  CHECK(decode_header_words("caf\xE9 raw") == "café raw");  // raw 8-bit: windows-1252
  CHECK(decode_header_words("caf\xC3\xA9 raw") == "café raw");
}

// ---- HTML -------------------------------------------------------------------

TEST_CASE("html: tags, block tags and whitespace") {
  CHECK(html("<p>Hello <b>world</b></p>").text == "Hello world");
  CHECK(html("a<br>b<div>c</div>d<li>e").text == "a\nb\nc\nd\ne");
  CHECK(html("  a \n\t b  <br><br>  c").text == "a b\nc");
  CHECK(html("f<span>re</span>e m<i>on</i>ey").text == "free money");
  CHECK(html("<table><tr><td>a</td><td>b</td></tr></table>").text == "a b");
  CHECK(html("a < b and c<>d").text == "a < b and c<>d");
  CHECK(html("<!DOCTYPE html><?xml version='1'?><html><head><title>T</title></head>x").text == "T\nx");
  CHECK(html("<a title='x > y'>z</a>").text == "z");
}

TEST_CASE("html: comments, script and style are dropped") {
  CHECK(html("a<!-- x <b>y</b> -->b").text == "ab");
  CHECK(html("a<!---->b<!-->c<!--->d").text == "abcd");
  CHECK(html("a<!-- -- -->b<!-- x --!>c").text == "abc");
  CHECK(html("a<script>if (a<b) x='</p>';</script>b<style>p{x:1}</style>c").text == "abc");
  CHECK(html("a<SCRIPT type=x>var s='</scr'+'ipt>';</SCRIPT >b").text == "ab");
  CHECK(html("a<script>x</script\n>b").text == "ab");
  CHECK(html("a<!-- never closed").text == "a");
  CHECK(html("a<script>never closed").text == "a");
}

TEST_CASE("html: entities") {
  CHECK(html("&amp;&lt;&gt;&quot;&#39;&#x41;&#65;&eacute;x&nbsp;y&copy;").text == "&<>\"'AAéx y©");
  CHECK(html("&AMP; &euro;&hellip;&#150;&#x1F600;").text == "& €…–\xF0\x9F\x98\x80");
  CHECK(html("AT&T &foo; &#xZZ; & x").text == "AT&T &foo; &#xZZ; & x");
  CHECK(html("&copy 2024 &amp").text == "© 2024 &");  // legacy names without ';'
  CHECK(html("&#0;&#x110000;").text == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(html("a&nbsp;&nbsp;&nbsp;b").text == "a b");
}

TEST_CASE("html: URL attributes") {
  auto o = html(
      "<a href=\"http://Example.COM:8080/x?a=1&amp;b=2\">x</a>"
      "<img src='http://img.example.org/a.gif'><form action=http://form.example.net/post>"
      "<body background=\"//bg.example/x.jpg\"><a href=\"javascript:void(0)\">"
      "<a href=\"#top\"><a href=\"  ht\ntp://split.example/ \"><a HREF=mailto:a@b.c>"
      "<img alt=\"http://not.a.url.attr/\"><a href=\"cid:part1\"><a href=\"data:text/html,x\">");
  std::vector<std::string> want = {"http://Example.COM:8080/x?a=1&b=2", "http://img.example.org/a.gif",
                                   "http://form.example.net/post", "//bg.example/x.jpg",
                                   "http://split.example/", "mailto:a@b.c"};
  CHECK(o.urls == want);
  CHECK(url_host(o.urls[0]) == "example.com");
  CHECK(url_host(o.urls[3]) == "bg.example");
}

TEST_CASE("html: any split gives the same text and URLs") {
  const std::string src =
      "<html><head><style>p { color: red }</style><script>var a = '<p>';</script></head>"
      "<body bgcolor=#fff background='http://bg.example/a.png'><!-- c --><p>Hello&nbsp;&amp; "
      "<b>w</b>orld &#x263A; caf\xC3\xA9</p><a href=\"http://a.example/?x=1&amp;y\">link</a> "
      "see http://text.example/path. <br/>&copy bye</body></html>";
  const HtmlOut whole = html(src);
  CHECK(whole.text == "Hello & world \xE2\x98\xBA café\nlink see http://text.example/path.\n© bye");
  for (size_t chunk = 1; chunk <= 17; ++chunk) {
    HtmlOut o = html(src, chunk);
    CHECK(o.text == whole.text);
    CHECK(o.urls == whole.urls);
  }
}

// ---- URLs -------------------------------------------------------------------

TEST_CASE("urls: found in text, host normalised") {
  using P = std::pair<std::string, std::string>;
  CHECK(urls_in("see http://Example.com/path, and www.Foo.org.") ==
        std::vector<P>{{"http://Example.com/path", "example.com"}, {"www.Foo.org", "www.foo.org"}});
  CHECK(urls_in("\"http://a.com/x\" <https://b.com> 'ftp://ftp.c.org/f'") ==
        std::vector<P>{{"http://a.com/x", "a.com"}, {"https://b.com", "b.com"}, {"ftp://ftp.c.org/f", "ftp.c.org"}});
  CHECK(urls_in("HTTPS://user:pw@Host.EXAMPLE:443/p?q#f") ==
        std::vector<P>{{"HTTPS://user:pw@Host.EXAMPLE:443/p?q#f", "host.example"}});
  CHECK(urls_in("http://b\xC3\xBC" "cher.DE/x") == std::vector<P>{{"http://b\xC3\xBC" "cher.DE/x", "b\xC3\xBC" "cher.de"}});
  CHECK(urls_in("(see http://a.com/x) and http://w.org/wiki/Foo_(bar)") ==
        std::vector<P>{{"http://a.com/x", "a.com"}, {"http://w.org/wiki/Foo_(bar)", "w.org"}});
  CHECK(urls_in("awww.example.com http:// nothing www. x.www.y.com").empty());
  CHECK(urls_in("http://[2001:DB8::1]:80/x") == std::vector<P>{{"http://[2001:DB8::1]:80/x", "2001:db8::1"}});
  CHECK(urls_in("end http://tail.example") == std::vector<P>{{"http://tail.example", "tail.example"}});
}

TEST_CASE("urls: any split gives the same URLs; long URLs are cut") {
  const std::string text = "a http://one.example/x?y=1 b www.two.example/z. c HTTP://THREE.example:81\n"
                           "d ftp://four.example/ e https://five.example/(p)) f";
  const auto whole = urls_in(text);
  CHECK(whole.size() == 5);
  for (size_t chunk = 1; chunk <= 13; ++chunk) CHECK(urls_in(text, chunk) == whole);
  const std::string longu = "http://long.example/" + std::string(10000, 'a') + " x";
  auto found = urls_in(longu, 100);
  REQUIRE(found.size() == 1);
  CHECK(found[0].first.size() == UrlFinder::kMaxUrl);
  CHECK(found[0].second == "long.example");
}

TEST_CASE("urls: url_host") {
  CHECK(url_host("//CDN.example.com/x") == "cdn.example.com");
  CHECK(url_host("www.Example.com:8080") == "www.example.com");
  CHECK(url_host("http://example.com./") == "example.com");
  CHECK(url_host("http://a@b@evil.example\\path") == "evil.example");
  CHECK(url_host("mailto:a@b.c").empty());
  CHECK(url_host("images/a.gif").empty());
  CHECK(url_host("1http:/x").empty());
}

// ---- magic bytes ------------------------------------------------------------

namespace {
std::string zip_entry(std::string_view name, std::string_view data = "xx") {
  std::string h("PK\x03\x04", 4);
  h += std::string(14, '\0');                        // version, flags, method, time, date, crc
  auto le32 = [](uint32_t v) { return std::string{char(v), char(v >> 8), char(v >> 16), char(v >> 24)}; };
  auto le16 = [](uint32_t v) { return std::string{char(v), char(v >> 8)}; };
  h += le32(static_cast<uint32_t>(data.size())) + le32(static_cast<uint32_t>(data.size()));
  h += le16(static_cast<uint32_t>(name.size())) + le16(0);
  h += name;
  h += data;
  return h;
}
}  // namespace

TEST_CASE("sniff_type: magic bytes") {
  using namespace std::string_literals;
  CHECK(sniff_type("MZ\x90\0\x03"s) == "application/x-dosexec");
  CHECK(sniff_type("\x7F" "ELF\x02\x01") == "application/x-executable");
  CHECK(sniff_type("\xCF\xFA\xED\xFE\x07\0\0\x01"s) == "application/x-mach-binary");
  CHECK(sniff_type("\xCA\xFE\xBA\xBE\0\0\0\x02"s) == "application/x-mach-binary");
  CHECK(sniff_type("\xCA\xFE\xBA\xBE\0\0\0\x34"s) == "application/java-vm");
  CHECK(sniff_type(zip_entry("readme.txt")) == "application/zip");
  CHECK(sniff_type(zip_entry("[Content_Types].xml") + zip_entry("word/document.xml")) ==
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
  CHECK(sniff_type(zip_entry("xl/workbook.xml")) == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
  CHECK(sniff_type(zip_entry("ppt/slides/s.xml")) ==
        "application/vnd.openxmlformats-officedocument.presentationml.presentation");
  CHECK(sniff_type(zip_entry("mimetype", "application/vnd.oasis.opendocument.text")) ==
        "application/vnd.oasis.opendocument.text");
  CHECK(sniff_type(zip_entry("META-INF/MANIFEST.MF")) == "application/java-archive");
  CHECK(sniff_type("PK\x05\x06" + std::string(18, '\0')) == "application/zip");
  CHECK(sniff_type("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0"s) == "application/x-ole-storage");
  CHECK(sniff_type("%PDF-1.4\n") == "application/pdf");
  CHECK(sniff_type(std::string(500, ' ') + "%PDF-1.7") == "application/pdf");
  CHECK(sniff_type("{\\rtf1\\ansi") == "application/rtf");
  CHECK(sniff_type("{\\rt\\x") == "application/rtf");
  CHECK(sniff_type("\x1F\x8B\x08\0"s) == "application/gzip");
  CHECK(sniff_type("Rar!\x1A\x07\x01\0"s) == "application/vnd.rar");
  CHECK(sniff_type("7z\xBC\xAF\x27\x1C\0\x04"s) == "application/x-7z-compressed");
  CHECK(sniff_type("MSCF\0\0\0\0\x10"s) == "application/vnd.ms-cab-compressed");
  CHECK(sniff_type("\x89PNG\r\n\x1A\n\0\0"s) == "image/png");
  CHECK(sniff_type("\xFF\xD8\xFF\xE0\0\x10JFIF"s) == "image/jpeg");
  CHECK(sniff_type("GIF89a\x01\0") == "image/gif");
  CHECK(sniff_type("#!/bin/sh\necho hi\n") == "text/x-shellscript");
  CHECK(sniff_type("\xEF\xBB\xBF  <!DOCTYPE HTML><html>") == "text/html");
  CHECK(sniff_type("\r\n<HTML><body>") == "text/html");
  CHECK(sniff_type("Hello, plain text") == "");
  CHECK(sniff_type("") == "");
  CHECK(sniff_type("M") == "");
}

// ---- the walker: structure --------------------------------------------------

namespace {
Recorder walk_rec(std::string_view msg, const Limits& lim = {}, Cut cut = Cut::kWhole) {
  Recorder r;
  walk_into(r, msg, cut, lim);
  return r;
}
bool has_line(const Recorder& r, std::string_view l) {
  return r.log.find(std::string(l) + "\n") != std::string::npos;
}
}  // namespace

TEST_CASE("walker: a plain message, unfolded and decoded headers") {
  const std::string msg =
      "From sender@example.com  Mon Sep  2 12:00:00 2002\n"
      "Subject: =?utf-8?q?caf=C3=A9?=\n  and more\n"
      "X-Odd :  spaced name\n"
      "To: a@example.com\n"
      "\n"
      "Body line 1 http://x.example/\nline 2\n";
  Recorder r = walk_rec(msg);
  CHECK(r.log ==
        "header 0/0 Subject: café  and more\n"
        "header 0/0 X-Odd: spaced name\n"
        "header 0/0 To: a@example.com\n"
        "begin 0/0 text/plain charset= cte=7bit disp= file=\"\"\n"
        "url 0/0 http://x.example/ host=x.example\n"
        "text 0/0 plain len=37 \"Body line 1 http://x.example/\\nline 2\\n\"\n"
        "end 0/0 type=\n");
  CHECK(r.raw == "Body line 1 http://x.example/\nline 2\n");
  check_chunking(msg);
}

TEST_CASE("walker: CRLF and LF give the same events; raw body is exact") {
  const std::string msg =
      "Content-Type: multipart/mixed; boundary=\"b1\"\n\npre\n--b1\nContent-Type: text/plain\n\nhello\nthere\n"
      "--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nTVqQAAMAAAAEAAAA\n--b1--\nepi\n";
  const std::string lf = walk(msg);
  Recorder r = walk_rec(crlf(msg), {}, Cut::kRandom);
  CHECK(r.log == lf.substr(0, lf.rfind("raw ")));
  const std::string body = crlf(msg).substr(crlf(msg).find("\r\n\r\n") + 4);
  CHECK(r.raw == body);
  CHECK(has_line(r, "end 2/1 type=application/x-dosexec"));
  check_chunking(crlf(msg));
}

TEST_CASE("walker: header section ends at a line that is not a header") {
  const std::string msg = "Subject: x\nthis is not a header\nmore body\n";
  Recorder r = walk_rec(msg);
  CHECK(r.ended_text[0] == "this is not a header\nmore body\n");
  CHECK(r.raw == "this is not a header\nmore body\n");
  Recorder e = walk_rec("");
  CHECK(e.log == "begin 0/0 text/plain charset= cte=7bit disp= file=\"\"\nend 0/0 type=\n");
  Recorder h = walk_rec("Subject: only headers");
  CHECK(h.log == "header 0/0 Subject: only headers\nbegin 0/0 text/plain charset= cte=7bit disp= file=\"\"\nend 0/0 type=\n");
  Recorder raw8 = walk_rec("Subject: caf\xE9\n\n");
  CHECK(has_line(raw8, "header 0/0 Subject: café"));
}

TEST_CASE("walker: multipart, preamble and epilogue ignored, nesting") {
  const std::string msg =
      "Content-Type: multipart/mixed; boundary=outer\n\n"
      "preamble text http://pre.example/\n"
      "--outer\n"
      "Content-Type: multipart/alternative; boundary=\"inner\"\n\n"
      "inner preamble\n"
      "--inner\nContent-Type: text/plain; charset=utf-8\n\none\n\n"
      "--inner\nContent-Type: text/html\n\n<p>two</p>\n"
      "--inner--\n"
      "between\n"
      "--outer\nContent-Type: text/plain\n\nthree\n"
      "--outer--\n"
      "epilogue http://epi.example/\n";
  Recorder r = walk_rec(msg);
  CHECK(r.log ==
        "header 0/0 Content-Type: multipart/mixed; boundary=outer\n"
        "begin 0/0 multipart/mixed charset= cte=7bit disp= file=\"\" multipart\n"
        "header 1/1 Content-Type: multipart/alternative; boundary=\\\"inner\\\"\n"
        "begin 1/1 multipart/alternative charset= cte=7bit disp= file=\"\" multipart\n"
        "header 2/2 Content-Type: text/plain; charset=utf-8\n"
        "begin 2/2 text/plain charset=utf-8 cte=7bit disp= file=\"\"\n"
        "text 2/2 plain len=4 \"one\\n\"\n"
        "end 2/2 type=\n"
        "header 3/2 Content-Type: text/html\n"
        "begin 3/2 text/html charset= cte=7bit disp= file=\"\"\n"
        "html 3/2 len=10 fnv=" + std::to_string(fnv1a("<p>two</p>")) + "\n"
        "text 3/2 html len=3 \"two\"\n"
        "end 3/2 type=\n"
        "end 1/1 type=\n"
        "header 4/1 Content-Type: text/plain\n"
        "begin 4/1 text/plain charset= cte=7bit disp= file=\"\"\n"
        "text 4/1 plain len=5 \"three\"\n"
        "end 4/1 type=\n"
        "end 0/0 type=\n");
  check_chunking(msg);
  check_chunking(crlf(msg));
}

TEST_CASE("walker: boundaries that are prefixes of each other") {
  for (auto [outer, inner] : {std::pair<std::string, std::string>{"abc", "abc-def"}, {"abc-def", "abc"},
                               {"x", "x--"}, {"same", "same"}}) {
    const std::string msg = "Content-Type: multipart/mixed; boundary=\"" + outer + "\"\n\n--" + outer +
                            "\nContent-Type: multipart/mixed; boundary=\"" + inner + "\"\n\n--" + inner +
                            "\n\ninner one\n--" + inner + "\n\ninner two\n--" + inner + "--\n--" + outer +
                            "\n\nouter two\n--" + outer + "--\n";
    Recorder r = walk_rec(msg);
    CAPTURE(outer);
    CAPTURE(inner);
    CHECK(r.ended_text[2] == "inner one");
    CHECK(r.ended_text[3] == "inner two");
    if (outer != inner) {
      CHECK(has_line(r, "end 1/1 type="));
      CHECK(r.ended_text[4] == "outer two");
    }
    check_chunking(msg);
  }
}

TEST_CASE("walker: boundary lines: padding, junk, case, missing close delimiter") {
  const std::string msg =
      "Content-Type: multipart/mixed; boundary=\"B\"\n\n"
      "--B \t\n\npart one\n--b\n--B--junk\n-- B\n"
      "--B\t\n\npart two\n"
      "--B--  \n"
      "--B\n\nafter close: epilogue\n";
  Recorder r = walk_rec(msg);
  CHECK(r.ended_text[1] == "part one\n--b\n--B--junk\n-- B");
  CHECK(r.ended_text[2] == "part two");
  CHECK(r.begun.size() == 3);
  const std::string open =
      "Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\n\none\n--B\nContent-Type: multipart/related; "
      "boundary=C\n\n--C\n\ndeep\n";
  Recorder o = walk_rec(open);
  CHECK(o.ended_text[3] == "deep\n");
  CHECK(has_line(o, "end 3/2 type="));
  CHECK(has_line(o, "end 2/1 type="));
  CHECK(has_line(o, "end 0/0 type="));
  check_chunking(msg);
  check_chunking(open);
  // A part cut short by the next boundary in its header section.
  Recorder h = walk_rec("Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: image/gif\n--B\n\nx\n--B--\n");
  CHECK(has_line(h, "begin 1/1 image/gif charset= cte=7bit disp= file=\"\" attachment"));
  CHECK(h.ended_text[2] == "x");
}

TEST_CASE("walker: multipart without a boundary is read as text") {
  Recorder r = walk_rec("Content-Type: multipart/mixed\n\n--x\n\nbody\n");
  CHECK(has_line(r, "begin 0/0 text/plain charset= cte=7bit disp= file=\"\""));
  CHECK(r.ended_text[0] == "--x\n\nbody\n");
}

TEST_CASE("walker: transfer encodings and text kinds") {
  const std::string msg =
      "Content-Type: multipart/mixed; boundary=B\n\n"
      "--B\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
      "caf=E9 =\nsoft www.qp.example\n"
      "--B\nContent-Type: text/html; charset=\"utf-8\"\nContent-Transfer-Encoding: base64\n\n" +
      b64("<p>Hi &amp; <a href=\"https://H.example/a\">x</a></p>") + "\n"
      "--B\nContent-Type: application/x-msdownload; name=\"run.exe\"\nContent-Transfer-Encoding: base64\n\n" +
      b64(std::string("MZ\x90\0\x03\0\0\0", 8) + std::string(300, 'A')) + "\n"
      "--B\nContent-Type: text/plain; name=notes.txt\nContent-Transfer-Encoding: 8bit\n\nsee www.att.example\n"
      "--B--\n";
  Recorder r = walk_rec(msg);
  CHECK(r.ended_text[1] == "café soft www.qp.example");
  CHECK(r.ended_text[2] == "Hi & x");
  CHECK(r.ended_data[3].size() == 308);
  CHECK(has_line(r, "end 3/1 type=application/x-dosexec"));
  CHECK(has_line(r, "begin 3/1 application/x-msdownload charset= cte=base64 disp= file=\"run.exe\" attachment"));
  // A text part sent as a file is text and attachment content.
  CHECK(r.ended_text[4] == "see www.att.example");
  CHECK(r.ended_data[4] == "see www.att.example");
  using P = std::pair<std::string, std::string>;
  CHECK(r.urls == std::vector<P>{{"www.qp.example", "www.qp.example"}, {"https://H.example/a", "h.example"},
                                 {"www.att.example", "www.att.example"}});
  check_chunking(msg);
}

TEST_CASE("walker: attachment names (RFC 2231, RFC 2047, name=)") {
  struct Case {
    std::string headers, want;
  };
  const Case cases[] = {
      {"Content-Disposition: attachment; filename=\"plain name.pdf\"", "plain name.pdf"},
      {"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC%20rates.pdf", "€ rates.pdf"},
      {"Content-Disposition: attachment; filename*=iso-8859-1'fr'caf%E9.doc", "café.doc"},
      {"Content-Disposition: attachment;\n filename*0*=utf-8''abc%C3%A9;\n filename*1=\"def.txt\"", "abcédef.txt"},
      {"Content-Disposition: attachment; filename*1=\"name.doc\"; filename*0=\"long\"", "longname.doc"},
      {"Content-Disposition: attachment; filename=\"=?utf-8?B?w6l0w6kuemlw?=\"", "été.zip"},
      {"Content-Disposition: attachment; filename=\"old.txt\"; filename*=utf-8''new.txt", "new.txt"},
      {"Content-Type: application/octet-stream; name=\"=?iso-8859-1?Q?r=E9sum=E9.exe?=\"", "résumé.exe"},
      {"Content-Type: application/pdf; name=fallback.pdf\nContent-Disposition: inline", "fallback.pdf"},
      {"Content-Disposition: attachment; filename=bare.scr ; size=10", "bare.scr"},
      {"Content-Disposition: attachment; filename=\"esc\\\"aped.js\"", "esc\"aped.js"},
      {"Content-Disposition: attachment; filename=\"raw \xC3\xA9t\xC3\xA9.txt\"", "raw été.txt"},
      {"Content-Disposition: attachment; =odd; ; novalue; filename=after.odd", "after.odd"},
  };
  for (const Case& c : cases) {
    const std::string msg = "Content-Type: multipart/mixed; boundary=B\n\n--B\n" + c.headers + "\n\ndata\n--B--\n";
    Recorder r = walk_rec(msg);
    REQUIRE(r.begun.size() == 2);
    CAPTURE(c.headers);
    CHECK(r.begun[1].filename == c.want);
    CHECK(r.begun[1].is_attachment);
  }
  Recorder inl = walk_rec("Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n"
                          "Content-Disposition: INLINE\n\nx\n--B--\n");
  CHECK(inl.begun[1].disposition == "inline");
  CHECK_FALSE(inl.begun[1].is_attachment);
}

TEST_CASE("walker: message/rfc822 is walked as a nested message") {
  const std::string msg =
      "Subject: outer\nContent-Type: multipart/mixed; boundary=B\n\n"
      "--B\nContent-Type: text/plain\n\nsee attached\n"
      "--B\nContent-Type: message/rfc822\n\n"
      "Subject: =?utf-8?q?inn=C3=A9r?=\nFrom: x@example.com\nContent-Type: multipart/alternative; boundary=C\n\n"
      "--C\nContent-Type: text/plain\n\ninner text\n--C--\n"
      "--B--\n";
  Recorder r = walk_rec(msg);
  CHECK(has_line(r, "begin 2/1 message/rfc822 charset= cte=7bit disp= file=\"\" message"));
  CHECK(has_line(r, "header 3/2 Subject: innér"));
  CHECK(has_line(r, "header 3/2 From: x@example.com"));
  CHECK(has_line(r, "begin 3/2 multipart/alternative charset= cte=7bit disp= file=\"\" multipart"));
  CHECK(r.ended_text[4] == "inner text");
  CHECK(r.log.find("header 0/0 From") == std::string::npos);
  const size_t end3 = r.log.find("end 3/2"), end2 = r.log.find("end 2/1"), end0 = r.log.find("end 0/0");
  CHECK((end3 < end2 && end2 < end0));
  check_chunking(msg);
  // Digest parts default to message/rfc822; an encoded message part is a leaf.
  Recorder d = walk_rec("Content-Type: multipart/digest; boundary=D\n\n--D\n\nSubject: in digest\n\nbody\n--D--\n");
  CHECK(has_line(d, "header 2/2 Subject: in digest"));
  Recorder e = walk_rec("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeA==\n");
  CHECK_FALSE(e.begun[0].is_message);
  CHECK(e.ended_data[0] == "Subject: x");
}

// ---- the walker: limits -----------------------------------------------------

namespace {
std::string nested(unsigned levels, std::string_view leaf = "bottom text\n") {
  std::string m = "Content-Type: multipart/mixed; boundary=\"L0\"\n\n";
  for (unsigned i = 0; i < levels; ++i)
    m += "--L" + std::to_string(i) + "\nContent-Type: multipart/mixed; boundary=\"L" + std::to_string(i + 1) + "\"\n\n";
  m += "--L" + std::to_string(levels) + "\nContent-Type: text/plain\n\n" + std::string(leaf);
  for (unsigned i = levels + 1; i-- > 0;) m += "--L" + std::to_string(i) + "--\n";
  return m;
}
}  // namespace

TEST_CASE("limits: depth") {
  Recorder ok = walk_rec(nested(15));  // text at depth 16: allowed
  CHECK(ok.limits.empty());
  CHECK(ok.ended_text.rbegin()->second == "bottom text");
  const std::string deep = nested(40);
  Recorder r = walk_rec(deep);
  CHECK(r.limits == std::vector<std::string>{"depth"});
  for (auto& [i, t] : r.ended_text) CHECK(t.empty());
  CHECK(r.raw == deep.substr(deep.find("\n\n") + 2));  // raw body goes on to the end
  CHECK(std::count(r.log.begin(), r.log.end(), '\n') > 0);
  // Every begun part is ended, in reverse order.
  size_t begins = 0, ends = 0;
  for (size_t p = 0; (p = r.log.find("begin ", p)) != std::string::npos; ++p) ++begins;
  for (size_t p = 0; (p = r.log.find("end ", p)) != std::string::npos; ++p) ++ends;
  CHECK(begins == ends);
  check_chunking(deep);
}

TEST_CASE("limits: part count, once per kind") {
  std::string m = "Content-Type: multipart/mixed; boundary=B\n\n";
  for (int i = 0; i < 50; ++i) m += "--B\n\npart " + std::to_string(i) + "\n";
  m += "--B--\n";
  Limits lim;
  lim.max_parts = 10;
  Recorder r = walk_rec(m, lim);
  CHECK(r.limits == std::vector<std::string>{"parts"});
  CHECK(r.begun.size() == 10);
  CHECK(r.ended_text[9] == "part 8");
  CHECK(r.raw.size() == m.size() - m.find("\n\n") - 2);
  check_chunking(m, lim);
  Recorder full = walk_rec(m);
  CHECK(full.limits.empty());
  CHECK(full.begun.size() == 51);
}

TEST_CASE("limits: decoded size") {
  const std::string payload(5000, 'Z');
  const std::string m = "Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: application/zip\n"
                        "Content-Transfer-Encoding: base64\n\n" + b64(payload) + "\n--B\n\nmore text\n--B\n\nand more\n--B--\n";
  Limits lim;
  lim.max_decoded = 1000;
  Recorder r = walk_rec(m, lim);
  CHECK(r.limits == std::vector<std::string>{"decoded-size"});
  CHECK(r.ended_data[1] == payload.substr(0, 1000));
  CHECK(r.begun.size() == 2);  // nothing after the bound is decoded
  check_chunking(m, lim);
  Recorder w;
  Walker walker(w, lim);
  walker.feed(m);
  walker.finish();
  CHECK(walker.decoded_bytes() == 1000);
  CHECK(walker.parts_seen() == 2);
}

TEST_CASE("limits: header section size, raw body still found") {
  std::string m = "Subject: big\n";
  for (int i = 0; i < 200; ++i) m += "X-Filler-" + std::to_string(i) + ": " + std::string(60, 'f') + "\n";
  m += "\nthe body\n";
  Limits lim;
  lim.max_header_bytes = 4096;
  Recorder r = walk_rec(m, lim);
  CHECK(r.limits == std::vector<std::string>{"header-size"});
  CHECK(r.begun.empty());
  CHECK(r.raw == "the body\n");
  check_chunking(m, lim);
  // In a nested part: the top-level body was already known.
  std::string n = "Content-Type: multipart/mixed; boundary=B\n\n--B\nX-Big: " + std::string(10000, 'b') + "\n\nx\n--B--\n";
  Recorder nr = walk_rec(n, lim);
  CHECK(nr.limits == std::vector<std::string>{"header-size"});
  CHECK(nr.log.find("end 0/0") != std::string::npos);
  CHECK(nr.raw == n.substr(n.find("\n\n") + 2));
}

TEST_CASE("limits: long header lines are cut") {
  Limits lim;
  lim.max_line = 100;
  const std::string m = "Subject: " + std::string(500, 's') + "\nTo: x\n\nbody\n";
  Recorder r = walk_rec(m, lim);
  CHECK(has_line(r, "header 0/0 Subject: " + std::string(91, 's')));
  CHECK(has_line(r, "header 0/0 To: x"));
  check_chunking(m, lim);
  // A long line that ends the header section is body: replayed whole as raw.
  const std::string body = std::string(300, 'b') + " no colon\nrest\n";
  const std::string m2 = "Subject: x\n" + body;
  Recorder r2 = walk_rec(m2, lim, Cut::kRandom);
  CHECK(r2.raw == body);
  CHECK(r2.ended_text[0] == body);
  // ... also when it is the last line, without a line end.
  CHECK(walk_rec("Subject: x\nno colon, no line end").raw == "no colon, no line end");
  CHECK(walk_rec("Subject: x\nno colon\r").raw == "no colon\r");
}

TEST_CASE("walker: output comes in pieces however the input arrives") {
  std::string text;
  for (int i = 0; i < 4000; ++i) text += "line " + std::to_string(i) + " caf\xC3\xA9 \xE2\x82\xAC\n";
  const std::string m = "Content-Type: text/plain; charset=utf-8\n\n" + text;
  Recorder r = walk_rec(m, {}, Cut::kBytes);
  CHECK(r.ended_text[0] == text);
  CHECK(r.data_calls <= text.size() / 8192 + 2);
  CHECK(r.pieces_split_utf8.empty());
  const std::string h = "Content-Type: text/html\n\n" + std::string(20000, 'x') + "<p>" + std::string(20000, 'y');
  Recorder hr = walk_rec(h, {}, Cut::kRandom);
  CHECK(hr.data_calls <= 2 * (40003 / 8192 + 2));
}

TEST_CASE("walker: finish is idempotent, feeding after it is ignored") {
  Recorder r;
  Walker w(r);
  w.feed("Subject: x\n\nbody");
  w.finish();
  const std::string once = r.canonical();
  w.finish();
  w.feed("more");
  CHECK(r.canonical() == once);
  CHECK(w.parts_seen() == 1);
  CHECK(w.decoded_bytes() == 4);
}

TEST_CASE("walker: memory stays bounded on hostile shapes") {
#if defined(__GLIBC__) && !defined(MXG_ASAN)
  struct Null : Handler {} h;
  const std::string chunk(64 << 10, 'A');
  const std::string dashes(64 << 10, '-');
  struct Shape {
    std::string head;
    const std::string* fill;
  };
  const Shape shapes[] = {
      {"Content-Type: text/plain\n\n", &chunk},  // one endless body line
      {"Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Transfer-Encoding: base64\n\n", &chunk},
      {"Content-Type: multipart/mixed; boundary=B\n\n--B\n\n", &dashes},  // an endless boundary candidate
      {"Subject: ", &chunk},                                             // an endless header line
      {"Content-Type: text/html\n\n<a href=\"", &chunk},               // an endless attribute
  };
  for (const Shape& s : shapes) {
    Walker w(h);
    w.feed(s.head);
    const size_t base = mallinfo2().uordblks;
    size_t peak = 0;
    for (int i = 0; i < 160; ++i) {  // 10 MiB
      w.feed(*s.fill);
      peak = std::max(peak, mallinfo2().uordblks);
    }
    w.finish();
    CAPTURE(s.head);
    CHECK(peak < base + (2u << 20));
  }
#endif
}

// ---- archives -----------------------------------------------------------------

namespace {

std::string le16s(uint32_t v) { return std::string{char(v), char(v >> 8)}; }
std::string le32s(uint32_t v) { return std::string{char(v), char(v >> 8), char(v >> 16), char(v >> 24)}; }

struct ZipItem {
  std::string name;
  std::string data = "data";
  uint16_t flags = 0;
  bool local = true, central = true;
};

// A ZIP file written field by field (stored entries, CRCs left at zero: the
// lister never reads them).
std::string make_zip(const std::vector<ZipItem>& items, std::string_view comment = "") {
  std::string out, cd;
  uint16_t n = 0;
  for (const ZipItem& it : items) {
    const auto offset = static_cast<uint32_t>(out.size());
    const std::string sizes = le32s(0) + le32s(uint32_t(it.data.size())) + le32s(uint32_t(it.data.size()));
    if (it.local) {
      out += "PK\x03\x04" + le16s(20) + le16s(it.flags) + le16s(0) + le16s(0) + le16s(0) + sizes +
             le16s(uint32_t(it.name.size())) + le16s(0) + it.name + it.data;
    }
    if (it.central) {
      cd += "PK\x01\x02" + le16s(20) + le16s(20) + le16s(it.flags) + le16s(0) + le16s(0) + le16s(0) + sizes +
            le16s(uint32_t(it.name.size())) + le16s(0) + le16s(0) + le16s(0) + le16s(0) + le32s(0) + le32s(offset) +
            it.name;
      ++n;
    }
  }
  const auto cd_at = static_cast<uint32_t>(out.size());
  out += cd;
  out += "PK\x05\x06" + le16s(0) + le16s(0) + le16s(n) + le16s(n) + le32s(uint32_t(cd.size())) + le32s(cd_at) +
         le16s(uint32_t(comment.size()));
  out += comment;
  return out;
}

// One ustar header block (POSIX "ustar\0" or GNU "ustar  "), checksum filled in.
std::string tar_block(std::string_view name, uint64_t size, char type = '0', std::string_view prefix = "",
                      bool gnu = false) {
  std::string h(512, '\0');
  h.replace(0, std::min<size_t>(name.size(), 100), name.substr(0, 100));
  h.replace(100, 7, "0000644", 7);
  h.replace(108, 7, "0000000", 7);
  h.replace(116, 7, "0000000", 7);
  char num[16];
  std::snprintf(num, sizeof num, "%011llo", static_cast<unsigned long long>(size));
  h.replace(124, 11, num, 11);
  h.replace(136, 11, "00000000000", 11);
  h[156] = type;
  if (gnu) h.replace(257, 8, "ustar  \0", 8);
  else h.replace(257, 8, std::string("ustar\0" "00", 8));
  if (!gnu) h.replace(345, std::min<size_t>(prefix.size(), 155), prefix.substr(0, 155));
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<uint8_t>(h[i]);
  std::snprintf(num, sizeof num, "%06o", sum);
  h.replace(148, 6, num, 6);
  h[154] = '\0';
  h[155] = ' ';
  return h;
}

std::string tar_member(std::string_view name, std::string_view data, char type = '0', std::string_view prefix = "",
                       bool gnu = false) {
  std::string m = tar_block(name, data.size(), type, prefix, gnu);
  m += data;
  m.append((512 - data.size() % 512) % 512, '\0');
  return m;
}

std::string gzip_with_name(std::string_view name, std::string_view extra = "") {
  std::string g("\x1F\x8B\x08", 3);
  g += char((extra.empty() ? 0 : 0x04) | 0x08);
  g += std::string(4, '\0') + std::string("\0\x03", 2);  // mtime, xfl, os
  if (!extra.empty()) g += le16s(uint32_t(extra.size())) + std::string(extra);
  g += name;
  g += '\0';
  g += "\x4B\x4C\x4A\x06\x00";  // some deflate bytes
  return g;
}

std::vector<std::string> member_names(const std::vector<ArchiveMember>& ms) {
  std::vector<std::string> out;
  for (const auto& m : ms) out.push_back(std::string(m.format) + ":" + m.name + (m.encrypted ? " [enc]" : ""));
  return out;
}
using Names = std::vector<std::string>;

}  // namespace

TEST_CASE("archives: ZIP names from the central directory, flags and charsets") {
  const std::string zip = make_zip({
      {"invoice.pdf.exe"},
      {"docs/"},  // a directory: not a file
      {"secret.docm", "xx", 0x1},
      {"caf\xC3\xA9.txt", "d", 0x800},  // UTF-8 flag
      {"r\x82sum\x82.js"},              // CP437 (é = 0x82)
      {"a.pdf\x01.scr"},                // a control character hides the real extension
  });
  CHECK(member_names(list_archive(zip)) ==
        Names{"zip:invoice.pdf.exe", "zip:secret.docm [enc]", "zip:café.txt", "zip:résumé.js", "zip:a.pdf?.scr"});
  // A comment after the end record changes nothing.
  CHECK(member_names(list_archive(make_zip({{"x.exe"}}, "a comment PK"))) == Names{"zip:x.exe"});
}

TEST_CASE("archives: ZIP local headers and the directory are both read") {
  // A name only in the directory, one only in a local header: both listed,
  // a name in both only once.
  const std::string zip = make_zip({{"both.txt"}, {"central-only.exe", "x", 0, false, true}, {"local-only.js", "y", 0, true, false}});
  CHECK(member_names(list_archive(zip)) == Names{"zip:both.txt", "zip:central-only.exe", "zip:local-only.js"});
  // No directory at all (a cut archive): the local headers alone.
  std::string cut = zip.substr(0, zip.find("PK\x01\x02"));
  CHECK(member_names(list_archive(cut)) == Names{"zip:both.txt", "zip:local-only.js"});
  // Sizes after the data (flag 8): the next header is found by its signature.
  std::string dd = "PK\x03\x04" + le16s(20) + le16s(0x8) + le16s(8) + le16s(0) + le16s(0) + le32s(0) + le32s(0) +
                   le32s(0) + le16s(5) + le16s(0) + "a.bin" + "\x01\x02\x03PK\x07\x08" + std::string(12, '\0');
  dd += "PK\x03\x04" + le16s(20) + le16s(0x9) + le16s(8) + le16s(0) + le16s(0) + le32s(0) + le32s(0) + le32s(0) +
        le16s(9) + le16s(0) + "b.vbs.txt";
  CHECK(member_names(list_archive(dd)) == Names{"zip:a.bin", "zip:b.vbs.txt [enc]"});
}

TEST_CASE("archives: documents that are ZIP files are not listed") {
  CHECK(list_archive(make_zip({{"[Content_Types].xml"}, {"word/document.xml"}})).empty());
  CHECK(list_archive(make_zip({{"META-INF/MANIFEST.MF"}, {"a/B.class"}})).empty());
  CHECK(list_archive("PK\x05\x06" + std::string(18, '\0')).empty());  // an empty archive
}

TEST_CASE("archives: gzip names its file in FNAME") {
  CHECK(member_names(list_archive(gzip_with_name("report.pdf.exe"))) == Names{"gzip:report.pdf.exe"});
  CHECK(member_names(list_archive(gzip_with_name("na\xEFve.tar", "AB\x02\0xy"))) == Names{"gzip:naïve.tar"});
  std::string anonymous("\x1F\x8B\x08\0\0\0\0\0\0\x03\x4B\x4C\x4A\x06\x00", 15);
  CHECK(list_archive(anonymous).empty());
  CHECK(list_archive(std::string("\x1F\x8B\x08\x0C\0\0\0\0\0\x03\xFF\xFF", 12)).empty());  // FEXTRA runs off the end
}

TEST_CASE("archives: ustar headers, prefixes, GNU long names and pax paths") {
  std::string tar = tar_member("readme.txt", "hello") + tar_member("bin/", "", '5') +
                    tar_member("setup.exe", std::string(3000, 'x'), '0', "deep/dir") +
                    tar_member("././@LongLink", std::string(150, 'n') + ".scr", 'L', "", true) +
                    tar_member("cut-name", "z", '0', "", true) +
                    tar_member("PaxHeader", "25 path=pax/long name.js\n", 'x') + tar_member("short", "q") +
                    tar_member("after.lnk", "") + std::string(1024, '\0') + tar_member("past-the-end.exe", "");
  CHECK(member_names(list_archive(tar)) == Names{"tar:readme.txt", "tar:deep/dir/setup.exe",
                                                 "tar:" + std::string(150, 'n') + ".scr", "tar:pax/long name.js",
                                                 "tar:after.lnk"});
  // A header with a wrong checksum ends the listing.
  std::string bad = tar_member("one.txt", "1") + tar_member("two.exe", "2");
  bad[1024 + 10] = 'X';  // the second header: the first member's data fills one block
  CHECK(member_names(list_archive(bad)) == Names{"tar:one.txt"});
}

TEST_CASE("archives: bounded member count and name length") {
  std::vector<ZipItem> many;
  for (int i = 0; i < 300; ++i) many.push_back({"file" + std::to_string(i) + ".txt", ""});
  Limits lim;
  CHECK(list_archive(make_zip(many), lim).size() == lim.max_archive_members);
  lim.max_archive_members = 3;
  CHECK(member_names(list_archive(make_zip(many), lim)) == Names{"zip:file0.txt", "zip:file1.txt", "zip:file2.txt"});
  lim.max_archive_members = 0;
  CHECK(list_archive(make_zip(many), lim).empty());
  Limits short_names;
  short_names.max_archive_name = 6;
  // Cut on a character boundary: "ééé" is 6 bytes, "éééé" would be 8.
  CHECK(member_names(list_archive(make_zip({{"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9.exe", "", 0x800}}), short_names)) ==
        Names{"zip:ééé"});
  Limits tar_lim;
  tar_lim.max_archive_members = 2;
  std::string tar;
  for (int i = 0; i < 5; ++i) tar += tar_member("t" + std::to_string(i), "x");
  CHECK(list_archive(tar, tar_lim).size() == 2);
}

TEST_CASE("archives: corrupt and cut input never crashes and stays bounded") {
  const std::string zip = make_zip({{"a.exe", "aaaa", 0x1}, {"b/c.js", std::string(700, 'b')}, {"d.txt"}}, "cmt");
  std::string tar = tar_member("a.txt", std::string(600, 'a')) + tar_member("b.exe", "b") + std::string(1024, '\0');
  const std::string gz = gzip_with_name("x.doc.exe", "ex");
  std::mt19937 rng(7);
  for (const std::string* base : std::vector<const std::string*>{&zip, &tar, &gz}) {
    for (size_t cut = 0; cut <= base->size(); ++cut) {
      for (const auto& m : list_archive(base->substr(0, cut))) CHECK(m.name.size() <= Limits{}.max_archive_name);
    }
    for (int round = 0; round < 3000; ++round) {
      std::string bad = *base;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
      const auto ms = list_archive(bad);
      CHECK(ms.size() <= Limits{}.max_archive_members);
    }
  }
}

TEST_CASE("archives: a base64 ZIP attachment in a message, whatever the chunking") {
  // Big enough that the directory is far from the local headers: the ZIP's
  // first entry holds 300 KiB, so only the tail window sees the directory.
  std::vector<ZipItem> items = {{"big.bin", std::string(300u << 10, 'z')}, {"Rechnung.pdf.exe"}, {"ok.txt", "t", 0x1}};
  const std::string zip = make_zip(items);
  std::string body;
  const std::string enc = b64(zip);
  for (size_t i = 0; i < enc.size(); i += 76) body += enc.substr(i, 76) + "\n";
  const std::string msg = "Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nsee attached\n--B\n"
                          "Content-Type: application/zip; name=files.zip\nContent-Transfer-Encoding: base64\n\n" +
                          body + "--B--\n";
  Recorder r = walk_rec(msg);
  CHECK(has_line(r, "member 2/1 zip \"big.bin\""));
  CHECK(has_line(r, "member 2/1 zip \"Rechnung.pdf.exe\""));
  CHECK(has_line(r, "member 2/1 zip \"ok.txt\" encrypted"));
  // Members come after the part's begin and before its end.
  CHECK(r.log.find("member 2/1") > r.log.find("begin 2/1"));
  CHECK(r.log.find("member 2/1") < r.log.find("end 2/1"));
  const std::string whole = walk(msg);
  CHECK(walk(msg, Cut::kRandom, {}, 3) == whole);
  CHECK(walk(msg, Cut::kRandom, {}, 4) == whole);
  // A text part is not an archive, and a decoded-size bound keeps only the local headers seen.
  Limits lim;
  lim.max_decoded = 1000;
  Recorder small = walk_rec(msg, lim);
  CHECK(has_line(small, "member 2/1 zip \"big.bin\""));
  CHECK_FALSE(has_line(small, "member 2/1 zip \"Rechnung.pdf.exe\""));
}

// ---- golden files -----------------------------------------------------------

namespace {
Limits read_limits(const std::filesystem::path& p) {
  Limits lim;
  std::ifstream f(p);
  std::string line;
  while (std::getline(f, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = line.substr(0, eq);
    uint64_t v = std::stoull(line.substr(eq + 1));
    if (k == "max_depth") lim.max_depth = static_cast<unsigned>(v);
    if (k == "max_parts") lim.max_parts = static_cast<unsigned>(v);
    if (k == "max_decoded") lim.max_decoded = v;
    if (k == "max_header_bytes") lim.max_header_bytes = v;
    if (k == "max_line") lim.max_line = v;
    if (k == "max_archive_members") lim.max_archive_members = static_cast<unsigned>(v);
    if (k == "max_archive_name") lim.max_archive_name = v;
  }
  return lim;
}
}  // namespace

TEST_CASE("golden: messages walk to their .ref, whatever the chunking") {
  // Run from tests/ (meson test workdir). MXG_UPDATE_GOLDEN=1 rewrites the .ref files.
  const std::filesystem::path dir = "unit/mime_golden";
  REQUIRE(std::filesystem::is_directory(dir));
  const bool update = std::getenv("MXG_UPDATE_GOLDEN") != nullptr;
  std::vector<std::filesystem::path> emls;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".eml") emls.push_back(e.path());
  std::sort(emls.begin(), emls.end());
  CHECK(emls.size() >= 10);
  for (const auto& eml : emls) {
    CAPTURE(eml.string());
    auto ref = eml;
    ref.replace_extension(".ref");
    auto lim_path = eml;
    lim_path.replace_extension(".limits");
    const Limits lim = std::filesystem::exists(lim_path) ? read_limits(lim_path) : Limits{};
    const std::string msg = read_file(eml);
    const std::string got = walk(msg, Cut::kWhole, lim);
    if (update) {
      std::ofstream(ref, std::ios::binary) << got;
    } else {
      REQUIRE(std::filesystem::exists(ref));
      CHECK(got == read_file(ref));
    }
    check_chunking(msg, lim);
  }
}

// ---- throughput (opt-in) ----------------------------------------------------

TEST_CASE("bench: walker throughput over a directory of messages") {
  // MXG_MIME_BENCH=/tmp/dev/ham:/tmp/dev/spam ./unit-mime -tc='bench*'
  const char* dirs = std::getenv("MXG_MIME_BENCH");
  if (!dirs) return;
  std::vector<std::string> msgs;
  size_t total = 0;
  std::string_view list = dirs;
  while (!list.empty()) {
    std::string d(list.substr(0, list.find(':')));
    list.remove_prefix(std::min(list.size(), d.size() + 1));
    for (const auto& e : std::filesystem::directory_iterator(d)) {
      msgs.push_back(read_file(e.path()));
      total += msgs.back().size();
    }
  }
  struct Sink : Handler {
    size_t n = 0;
    void on_text(const PartInfo&, TextKind, std::string_view s) override { n += s.size(); }
    void on_html(const PartInfo&, std::string_view s) override { n += s.size(); }
    void on_attachment_data(const PartInfo&, std::string_view s) override { n += s.size(); }
    void on_raw_body(std::string_view s) override { n += s.size(); }
    void on_header(const PartInfo&, std::string_view, std::string_view v) override { n += v.size(); }
    void on_url(const PartInfo&, std::string_view u, std::string_view) override { n += u.size(); }
  } sink;
  auto cpu = [] {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
  };
  double best_cpu = 1e9, best_wall = 1e9;
  for (int rep = 0; rep < 10; ++rep) {
    const double c0 = cpu();
    const auto w0 = std::chrono::steady_clock::now();
    for (const std::string& m : msgs) {
      Walker w(sink);
      for (size_t i = 0; i < m.size(); i += 16384) w.feed(std::string_view(m).substr(i, 16384));
      w.finish();
    }
    best_cpu = std::min(best_cpu, cpu() - c0);
    best_wall = std::min(best_wall, std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count());
  }
  MESSAGE(msgs.size() << " messages, " << total / 1e6 << " MB: " << total / 1e6 / best_cpu << " MB/s (CPU time), "
                      << total / 1e6 / best_wall << " MB/s (wall)");
}
