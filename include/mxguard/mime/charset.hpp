// Streaming conversion of declared charsets to UTF-8 (iconv, with table fast
// paths for UTF-8, Latin-1/windows-1252 and unknown or absent charsets).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mxguard::mime {

// iconv handles (charset -> UTF-8) opened once per charset and reused; also
// remembers charsets iconv does not know. Bounded: past kMaxEntries further
// charsets are treated as unknown.
class CharsetCache {
 public:
  static constexpr size_t kMaxEntries = 32;
  CharsetCache() = default;
  ~CharsetCache();
  CharsetCache(const CharsetCache&) = delete;
  CharsetCache& operator=(const CharsetCache&) = delete;

  // The iconv_t (as void*) for a normalised charset name, reset to its
  // initial shift state; nullptr when iconv cannot convert it.
  void* get(std::string_view name);

 private:
  struct Entry {
    std::string name;
    void* cd;
  };
  std::vector<Entry> entries_;
};

// Lower-cased, unquoted, with common mail aliases mapped to what iconv knows
// ("ks_c_5601-1987" -> "cp949", "gb2312" -> "gb18030", ...).
std::string normalize_charset(std::string_view declared);

// Converts one stream. A multibyte sequence split across convert() calls is
// completed by the next call; invalid bytes become U+FFFD. Unknown or absent
// charsets pass valid UTF-8 through and read other bytes as windows-1252.
class CharsetDecoder {
 public:
  void start(std::string_view declared_charset, CharsetCache& cache);
  void convert(std::string_view in, std::string& out);
  // The same result as convert() into a cleared `scratch`, but returns `in`
  // itself, without copying, when the conversion would not change it (ASCII,
  // or valid UTF-8 in a UTF-8 mode): the common case in mail.
  std::string_view convert_view(std::string_view in, std::string& scratch);
  void finish(std::string& out);

 private:
  enum class Mode : uint8_t { kUtf8, kGuess, kCp1252, kIconv };
  void convert_utf8(std::string_view in, std::string& out);
  void convert_iconv(std::string_view in, std::string& out);

  Mode mode_ = Mode::kGuess;
  bool ascii_compatible_ = true;  // bytes < 0x80 always mean ASCII
  void* cd_ = nullptr;
  uint8_t pending_len_ = 0;
  char pending_[16] = {};  // an incomplete sequence from the previous call
  std::string join_;       // pending bytes + next input, reused
};

// Appends the UTF-8 encoding of a code point (U+FFFD for invalid ones).
void append_utf8(std::string& out, uint32_t cp);

// Appends `in` read as windows-1252 / as "UTF-8 where valid, else
// windows-1252" (for raw 8-bit header bytes).
void append_cp1252(std::string& out, std::string_view in);
void append_guess_utf8(std::string& out, std::string_view in);

// Drops an incomplete UTF-8 sequence at the end of `s` (after cutting valid
// UTF-8 at a byte limit).
void trim_partial_utf8(std::string& s);

}  // namespace mxguard::mime
