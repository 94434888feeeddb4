// Charset to UTF-8: own tables for the charsets that make up most mail (UTF-8,
// ASCII, Latin-1/windows-1252), iconv for the rest, handles cached per walker.
#include "mxguard/mime/charset.hpp"

#include <iconv.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "mxguard/core/strings.hpp"
#include "mxguard/mime/walker.hpp"

namespace mxguard::mime {
namespace {

const iconv_t kBadCd = reinterpret_cast<iconv_t>(-1);

// windows-1252 0x80..0x9F; the five holes map to the C1 code point, as the
// WHATWG encoding standard does.
constexpr std::array<uint16_t, 32> kCp1252High = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

struct Utf8Bytes {
  char b[3];
  uint8_t n;
};

constexpr std::array<Utf8Bytes, 128> make_cp1252_utf8() {
  std::array<Utf8Bytes, 128> t{};
  for (unsigned i = 0; i < 128; ++i) {
    uint32_t cp = i < 32 ? kCp1252High[i] : 0x80 + i;
    if (cp < 0x800) {
      t[i] = {{static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F)), 0}, 2};
    } else {
      t[i] = {{static_cast<char>(0xE0 | (cp >> 12)), static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
               static_cast<char>(0x80 | (cp & 0x3F))},
              3};
    }
  }
  return t;
}
constexpr auto kCp1252Utf8 = make_cp1252_utf8();

inline void append_cp1252_byte(std::string& out, uint8_t b) {
  const Utf8Bytes& u = kCp1252Utf8[b - 0x80];
  out.append(u.b, u.n);
}

constexpr uint64_t kHighBits = 0x8080808080808080ull;

// Length of the leading run of bytes < 0x80.
inline size_t ascii_prefix(const char* p, size_t n) {
  size_t i = 0;
  while (i + 8 <= n) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w & kHighBits) break;
    i += 8;
  }
  while (i < n && static_cast<uint8_t>(p[i]) < 0x80) ++i;
  return i;
}

// Length of the valid UTF-8 sequence starting at p (a byte >= 0x80), or 0.
// *truncated is set when the bytes so far are valid but the input ends.
inline size_t utf8_sequence(const uint8_t* p, size_t avail, bool* truncated) {
  uint8_t b0 = p[0];
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF;  // bounds for the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t k = 1; k < len; ++k) {
    if (k >= avail) {
      *truncated = true;
      return 0;
    }
    uint8_t b = p[k];
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
  }
  return len;
}

// Length of the leading run of complete, valid UTF-8.
size_t valid_utf8_prefix(std::string_view in) {
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  size_t i = 0;
  while (i < in.size()) {
    i += ascii_prefix(in.data() + i, in.size() - i);
    if (i == in.size()) break;
    bool truncated = false;
    size_t len = utf8_sequence(p + i, in.size() - i, &truncated);
    if (!len) break;
    i += len;
  }
  return i;
}

// Charsets in which a byte < 0x80 outside a multibyte sequence is always
// ASCII, so pure-ASCII input can skip iconv. Stateful (ISO-2022, UTF-7, HZ)
// and wide (UTF-16/32) encodings are not among them.
bool is_ascii_compatible(std::string_view n) {
  static constexpr std::string_view kPrefixes[] = {
      "iso-8859-", "windows-125", "cp125", "koi8", "gb18030", "gbk", "big5", "euc-",
      "cp932", "cp936", "cp949", "cp950", "cp874", "cp850", "cp866", "cp437", "cp852",
      "tis-620", "macintosh", "viscii"};
  for (auto p : kPrefixes)
    if (n.starts_with(p)) return true;
  return false;
}

struct Alias {
  std::string_view from, to;
};
constexpr Alias kAliases[] = {
    {"utf8", "utf-8"},
    {"unicode-1-1-utf-8", "utf-8"},
    {"x-unicode20utf8", "utf-8"},
    {"ascii", "us-ascii"},
    {"us_ascii", "us-ascii"},
    {"ansi_x3.4-1968", "us-ascii"},
    {"iso646-us", "us-ascii"},
    {"default", ""},
    {"unknown", ""},
    {"unknown-8bit", ""},
    {"x-unknown", ""},
    {"latin1", "iso-8859-1"},
    {"latin-1", "iso-8859-1"},
    {"l1", "iso-8859-1"},
    {"iso-ir-100", "iso-8859-1"},
    {"ibm819", "iso-8859-1"},
    {"cp819", "iso-8859-1"},
    {"iso-8859-1:1987", "iso-8859-1"},
    {"cp1252", "windows-1252"},
    {"windows1252", "windows-1252"},
    {"x-cp1252", "windows-1252"},
    {"win-1252", "windows-1252"},
    {"ks_c_5601-1987", "cp949"},
    {"ks_c_5601", "cp949"},
    {"ksc5601", "cp949"},
    {"ksc_5601", "cp949"},
    {"euc-kr", "cp949"},
    {"korean", "cp949"},
    {"windows-949", "cp949"},
    {"gb2312", "gb18030"},
    {"gbk", "gb18030"},
    {"x-gbk", "gb18030"},
    {"cp936", "gb18030"},
    {"chinese", "gb18030"},
    {"euc-cn", "gb18030"},
    {"csgb2312", "gb18030"},
    {"gb_2312-80", "gb18030"},
    {"shift_jis", "cp932"},
    {"shift-jis", "cp932"},
    {"sjis", "cp932"},
    {"x-sjis", "cp932"},
    {"ms_kanji", "cp932"},
    {"windows-31j", "cp932"},
    {"csshiftjis", "cp932"},
    {"iso-8859-8-i", "iso-8859-8"},
    {"iso-8859-6-i", "iso-8859-6"},
    {"x-mac-roman", "macintosh"},
    {"mac", "macintosh"},
    {"windows-874", "cp874"},
    {"unicode-1-1-utf-7", "utf-7"},
};

bool valid_charset_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
         c == ':' || c == '+' || c == '(' || c == ')';
}

}  // namespace

void append_utf8(std::string& out, uint32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void append_cp1252(std::string& out, std::string_view in) {
  size_t i = 0;
  while (i < in.size()) {
    size_t a = ascii_prefix(in.data() + i, in.size() - i);
    out.append(in.data() + i, a);
    i += a;
    if (i < in.size()) append_cp1252_byte(out, static_cast<uint8_t>(in[i++]));
  }
}

void append_guess_utf8(std::string& out, std::string_view in) {
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  size_t i = 0;
  while (i < in.size()) {
    size_t a = ascii_prefix(in.data() + i, in.size() - i);
    out.append(in.data() + i, a);
    i += a;
    if (i == in.size()) break;
    bool truncated = false;
    size_t len = utf8_sequence(p + i, in.size() - i, &truncated);
    if (len) {
      out.append(in.data() + i, len);
      i += len;
    } else {
      append_cp1252_byte(out, p[i++]);
    }
  }
}

void trim_partial_utf8(std::string& s) {
  size_t i = s.size();
  size_t cont = 0;
  while (i > 0 && cont < 3 && (static_cast<uint8_t>(s[i - 1]) & 0xC0) == 0x80) --i, ++cont;
  if (i == 0) return;
  const auto lead = static_cast<uint8_t>(s[i - 1]);
  const size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
  if (lead >= 0xC0 && need > cont) s.resize(i - 1);
}

std::string normalize_charset(std::string_view declared) {
  declared = trim(declared);
  while (!declared.empty() && (declared.front() == '"' || declared.front() == '\''))
    declared.remove_prefix(1);
  while (!declared.empty() && (declared.back() == '"' || declared.back() == '\''))
    declared.remove_suffix(1);
  declared = trim(declared);
  if (declared.empty() || declared.size() > 40) return {};
  std::string n = to_lower(declared);
  for (char c : n)
    if (!valid_charset_char(c)) return {};
  // "iso8859-2", "iso_8859-2" -> "iso-8859-2"
  if (n.starts_with("iso8859")) n.insert(3, "-");
  if (n.starts_with("iso_8859")) n[3] = '-';
  if (n.starts_with("iso-8859_")) n[8] = '-';
  for (const Alias& a : kAliases)
    if (n == a.from) return std::string(a.to);
  return n;
}

namespace {

// Handles of walkers that are gone, kept for the next walker on this thread:
// closing the last handle of a charset unloads its gconv module (munmap and a
// TLB shootdown on every core), far dearer than the conversion itself.
// Thread-local, so shards share nothing and take no lock.
struct IconvPool {
  static constexpr size_t kMax = 64;
  struct Item {
    std::string name;
    void* cd;  // nullptr: iconv does not know the charset
  };
  std::vector<Item> items;
  ~IconvPool();
};
thread_local IconvPool iconv_pool;
// A walker destroyed after this thread's pool (a static one) closes its own.
thread_local bool iconv_pool_alive = true;

IconvPool::~IconvPool() {
  iconv_pool_alive = false;
  for (Item& i : items)
    if (i.cd) iconv_close(static_cast<iconv_t>(i.cd));
}

}  // namespace

CharsetCache::~CharsetCache() {
  for (Entry& e : entries_) {
    if (iconv_pool_alive && iconv_pool.items.size() < IconvPool::kMax)
      iconv_pool.items.push_back({std::move(e.name), e.cd});
    else if (e.cd)
      iconv_close(static_cast<iconv_t>(e.cd));
  }
}

void* CharsetCache::get(std::string_view name) {
  for (Entry& e : entries_) {
    if (e.name == name) {
      if (e.cd) iconv(static_cast<iconv_t>(e.cd), nullptr, nullptr, nullptr, nullptr);
      return e.cd;
    }
  }
  if (entries_.size() >= kMaxEntries || name.empty()) return nullptr;
  auto& pool = iconv_pool.items;
  for (size_t i = 0; iconv_pool_alive && i < pool.size(); ++i) {
    if (pool[i].name == name) {
      entries_.push_back({std::move(pool[i].name), pool[i].cd});
      pool[i] = std::move(pool.back());
      pool.pop_back();
      if (entries_.back().cd) iconv(static_cast<iconv_t>(entries_.back().cd), nullptr, nullptr, nullptr, nullptr);
      return entries_.back().cd;
    }
  }
  std::string n(name);
  iconv_t cd = iconv_open("UTF-8", n.c_str());
  entries_.push_back({std::move(n), cd == kBadCd ? nullptr : static_cast<void*>(cd)});
  return entries_.back().cd;
}

void CharsetDecoder::start(std::string_view declared_charset, CharsetCache& cache) {
  pending_len_ = 0;
  cd_ = nullptr;
  ascii_compatible_ = true;
  std::string n = normalize_charset(declared_charset);
  if (n.empty() || n == "us-ascii") {
    mode_ = Mode::kGuess;
  } else if (n == "utf-8") {
    mode_ = Mode::kUtf8;
  } else if (n == "iso-8859-1" || n == "windows-1252") {
    mode_ = Mode::kCp1252;  // what every mail client does with "latin-1"
  } else if ((cd_ = cache.get(n)) != nullptr) {
    mode_ = Mode::kIconv;
    ascii_compatible_ = is_ascii_compatible(n);
  } else {
    mode_ = Mode::kGuess;
  }
}

void CharsetDecoder::convert(std::string_view in, std::string& out) {
  if (in.empty()) return;
  if (pending_len_) {
    // Rare (a sequence split between calls): join and convert as one.
    join_.assign(pending_, pending_len_);
    join_.append(in);
    pending_len_ = 0;
    in = join_;
  }
  switch (mode_) {
    case Mode::kUtf8:
    case Mode::kGuess:
      convert_utf8(in, out);
      break;
    case Mode::kCp1252:
      append_cp1252(out, in);
      break;
    case Mode::kIconv:
      convert_iconv(in, out);
      break;
  }
}

std::string_view CharsetDecoder::convert_view(std::string_view in, std::string& scratch) {
  scratch.clear();
  if (pending_len_ == 0 && !in.empty()) {
    if (mode_ == Mode::kUtf8 || mode_ == Mode::kGuess) {
      const size_t k = valid_utf8_prefix(in);
      if (k == in.size()) return in;
      scratch.append(in.data(), k);
      convert_utf8(in.substr(k), scratch);
      return scratch;
    }
    if ((mode_ == Mode::kCp1252 || ascii_compatible_) && ascii_prefix(in.data(), in.size()) == in.size())
      return in;
  }
  convert(in, scratch);
  return scratch;
}

void CharsetDecoder::convert_utf8(std::string_view in, std::string& out) {
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  size_t i = 0;
  const size_t n = in.size();
  while (i < n) {
    size_t a = ascii_prefix(in.data() + i, n - i);
    out.append(in.data() + i, a);
    i += a;
    if (i == n) break;
    bool truncated = false;
    size_t len = utf8_sequence(p + i, n - i, &truncated);
    if (len) {
      out.append(in.data() + i, len);
      i += len;
    } else if (truncated) {
      pending_len_ = static_cast<uint8_t>(n - i);
      std::memcpy(pending_, in.data() + i, n - i);
      break;
    } else if (mode_ == Mode::kGuess) {
      append_cp1252_byte(out, p[i++]);
    } else {
      append_utf8(out, 0xFFFD);
      ++i;
    }
  }
}

void CharsetDecoder::convert_iconv(std::string_view in, std::string& out) {
  if (ascii_compatible_ && ascii_prefix(in.data(), in.size()) == in.size()) {
    out.append(in);
    return;
  }
  auto cd = static_cast<iconv_t>(cd_);
  char* inp = const_cast<char*>(in.data());  // iconv's signature; never written
  size_t inleft = in.size();
  while (inleft > 0) {
    const size_t base = out.size();
    const size_t room = inleft * 4 + 16;
    out.resize(base + room);
    char* op = out.data() + base;
    size_t oleft = room;
    size_t r = iconv(cd, &inp, &inleft, &op, &oleft);
    int err = errno;
    out.resize(static_cast<size_t>(op - out.data()));
    if (r != static_cast<size_t>(-1)) break;
    if (err == E2BIG) continue;
    if (err == EINVAL && inleft < sizeof(pending_)) {
      pending_len_ = static_cast<uint8_t>(inleft);
      std::memcpy(pending_, inp, inleft);
      return;
    }
    if (err == EILSEQ || err == EINVAL) {
      append_utf8(out, 0xFFFD);
      ++inp;
      --inleft;
      continue;
    }
    // Anything else is unexpected from iconv; keep the text readable.
    append_guess_utf8(out, std::string_view(inp, inleft));
    break;
  }
}

void CharsetDecoder::finish(std::string& out) {
  if (pending_len_) {
    if (mode_ == Mode::kGuess)
      append_cp1252(out, std::string_view(pending_, pending_len_));
    else
      append_utf8(out, 0xFFFD);
    pending_len_ = 0;
  }
  if (mode_ == Mode::kIconv && cd_) {
    // Return to the initial shift state (ISO-2022 and friends may owe bytes).
    char buf[64];
    char* op = buf;
    size_t oleft = sizeof(buf);
    iconv(static_cast<iconv_t>(cd_), nullptr, nullptr, &op, &oleft);
    out.append(buf, static_cast<size_t>(op - buf));
  }
}

std::string to_utf8(std::string_view bytes, std::string_view charset) {
  CharsetCache cache;
  CharsetDecoder dec;
  dec.start(charset, cache);
  std::string out;
  out.reserve(bytes.size());
  dec.convert(bytes, out);
  dec.finish(out);
  return out;
}

}  // namespace mxguard::mime
