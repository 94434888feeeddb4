// libFuzzer target for the MIME walker: the first byte seeds the chunking (and
// small limits); chunked and whole walks must agree, and outputs be well-formed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/mime/walker.hpp"

using namespace mxguard::mime;

namespace {

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<uint8_t>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
    }
    i += len;
  }
  return true;
}

void require(bool ok) {
  if (!ok) std::abort();
}

// Structural events in order, data streams joined per part (their piece
// boundaries legitimately depend on the chunking).
struct Canon : Handler {
  std::string log;
  std::map<unsigned, std::string> text, html, data;
  std::string raw;
  std::vector<unsigned> open;
  bool fired[4] = {};

  void inside(const PartInfo& p) const { require(!open.empty() && open.back() == p.index); }

  void on_header(const PartInfo& p, std::string_view n, std::string_view v) override {
    require(valid_utf8(v));
    log += "H" + std::to_string(p.index) + ":" + std::string(n) + ":" + std::string(v) + "\n";
  }
  void on_part_begin(const PartInfo& p) override {
    require(valid_utf8(p.filename));
    require(open.empty() == (p.depth == 0));
    open.push_back(p.index);
    log += "B" + std::to_string(p.index) + "/" + std::to_string(p.depth) + p.content_type + "|" + p.filename + "\n";
  }
  void on_text(const PartInfo& p, TextKind k, std::string_view s) override {
    inside(p);
    require(valid_utf8(s));  // piece by piece: no sequence split between pieces
    text[p.index] += s;
    (void)k;
  }
  void on_html(const PartInfo& p, std::string_view s) override {
    inside(p);
    html[p.index] += s;
  }
  void on_url(const PartInfo& p, std::string_view u, std::string_view h) override {
    inside(p);
    require(valid_utf8(u) && valid_utf8(h));
    log += "U" + std::to_string(p.index) + std::string(u) + " " + std::string(h) + "\n";
  }
  void on_attachment_data(const PartInfo& p, std::string_view s) override {
    inside(p);
    data[p.index] += s;
  }
  void on_part_end(const PartInfo& p, std::string_view t) override {
    inside(p);
    open.pop_back();
    const unsigned i = p.index;
    require(valid_utf8(html[i]));
    log += "E" + std::to_string(i) + std::string(t) + "\n" + text[i] + "\n" + html[i] + "\n" + data[i] + "\n";
    text.erase(i);
    html.erase(i);
    data.erase(i);
  }
  void on_raw_body(std::string_view s) override { raw += s; }
  void on_limit(LimitHit l) override {
    const auto k = static_cast<size_t>(l);
    require(k < 4 && !fired[k]);
    fired[k] = true;
    log += "L" + std::string(to_string(l)) + "\n";
  }
};

uint32_t next(uint32_t& s) {
  s ^= s << 13;
  s ^= s >> 17;
  s ^= s << 5;
  return s;
}

}  // namespace

// Besides crashes, leaks and UB, a finding is: chunked and whole walks that
// disagree, text/URLs/headers/names that are not valid UTF-8, parts that do not
// nest, a limit reported twice, a bound exceeded, or a raw body that is not a
// suffix of the input.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t seed = data[0];
  const std::string_view msg(reinterpret_cast<const char*>(data + 1), size - 1);

  Limits lim;
  if (seed & 0x80) {  // small bounds, so the limit paths are reached often
    lim.max_depth = 3;
    lim.max_parts = 6;
    lim.max_decoded = 300;
    lim.max_header_bytes = 400;
    lim.max_line = 80;
  }

  Canon whole;
  {
    Walker w(whole, lim);
    w.feed(msg);
    w.finish();
    require(w.parts_seen() <= lim.max_parts);
    require(w.decoded_bytes() <= lim.max_decoded);
  }
  require(whole.open.empty());
  require(msg.ends_with(whole.raw));

  Canon cut;
  {
    Walker w(cut, lim);
    uint32_t s = seed * 2654435761u + 1;
    size_t i = 0;
    const uint32_t span = (seed & 0x0F) == 0 ? 1 : (seed & 0x0F) * 7u;
    while (i < msg.size()) {
      const size_t n = 1 + next(s) % span;
      w.feed(msg.substr(i, n));
      i += n;
    }
    w.finish();
  }
  require(cut.log == whole.log);
  require(cut.raw == whole.raw);

  // The building blocks on their own.
  const std::string_view head = msg.substr(0, 512);
  require(valid_utf8(decode_header_words(head)));
  static const char* kCharsets[] = {"utf-8", "", "iso-8859-2", "shift_jis", "iso-2022-jp", "utf-16", "gb18030", "utf-7"};
  require(valid_utf8(to_utf8(head, kCharsets[seed % 8])));
  (void)sniff_type(msg);
  return 0;
}
