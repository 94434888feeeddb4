// Archive listing: member names of ZIP (central directory, and local headers
// for what the directory does not show), gzip (FNAME) and ustar (512-byte
// headers, GNU long names, pax paths). Every length read from the input is
// checked against the bytes held before it is used.
#include "archive.hpp"

#include <algorithm>
#include <cstring>

namespace mxguard::mime {
namespace {

constexpr std::string_view kZip = "zip", kGzip = "gzip", kTar = "tar";
constexpr size_t kTarBlock = 512;
constexpr size_t kMaxCapture = 8u << 10;  // a long name or pax header kept for the next member
constexpr uint64_t kMaxTarSize = uint64_t{1} << 62;

inline bool has(std::string_view s, size_t at, std::string_view magic) {
  return s.size() >= at && s.size() - at >= magic.size() && std::memcmp(s.data() + at, magic.data(), magic.size()) == 0;
}
inline uint32_t le16(std::string_view s, size_t at) {
  return static_cast<uint8_t>(s[at]) | (uint32_t{static_cast<uint8_t>(s[at + 1])} << 8);
}
inline uint32_t le32(std::string_view s, size_t at) { return le16(s, at) | (le16(s, at + 2) << 16); }

// A NUL-terminated field of a fixed-size header.
std::string_view field(std::string_view h, size_t at, size_t len) {
  std::string_view f = h.substr(at, len);
  return f.substr(0, f.find('\0'));
}

// A tar number: octal digits (leading spaces allowed), or base-256 when the
// high bit of the first byte is set. Returns false when it is not a number.
bool tar_number(std::string_view f, uint64_t& v) {
  v = 0;
  if (!f.empty() && (static_cast<uint8_t>(f[0]) & 0x80)) {
    for (size_t i = 1; i < f.size(); ++i) {
      if (v >> 55) return false;  // would not fit
      v = (v << 8) | static_cast<uint8_t>(f[i]);
    }
    return true;
  }
  size_t i = 0;
  while (i < f.size() && f[i] == ' ') ++i;
  bool any = false;
  for (; i < f.size() && f[i] >= '0' && f[i] <= '7'; ++i) {
    if (v >> 60) return false;
    v = v * 8 + static_cast<uint64_t>(f[i] - '0');
    any = true;
  }
  for (; i < f.size(); ++i)
    if (f[i] != ' ' && f[i] != '\0') return false;
  return any;
}

bool tar_checksum_ok(std::string_view h) {
  uint64_t want = 0;
  if (!tar_number(h.substr(148, 8), want)) return false;
  uint64_t sum = 0;
  for (size_t i = 0; i < kTarBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<uint8_t>(h[i]);
  return sum == want;
}

bool all_zero(std::string_view h) {
  return std::all_of(h.begin(), h.end(), [](char c) { return c == '\0'; });
}

// The "path" record of a pax extended header ("LEN path=VALUE\n" records).
std::string pax_path(std::string_view data) {
  while (!data.empty()) {
    size_t sp = data.find(' ');
    if (sp == std::string_view::npos) break;
    size_t len = 0;
    for (size_t i = 0; i < sp; ++i) {
      if (data[i] < '0' || data[i] > '9' || len > data.size()) return {};
      len = len * 10 + static_cast<size_t>(data[i] - '0');
    }
    if (len <= sp + 1 || len > data.size()) break;
    std::string_view rec = data.substr(sp + 1, len - sp - 1);
    if (!rec.empty() && rec.back() == '\n') rec.remove_suffix(1);
    if (rec.starts_with("path=")) return std::string(rec.substr(5));
    data.remove_prefix(len);
  }
  return {};
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<uint8_t>(c) < 0x80; });
}

// A stored name as UTF-8 for the rules: converted from the archive's legacy
// charset unless it is ASCII or flagged (and valid) UTF-8, control
// characters shown as '?' (so "a.pdf\0.exe" still ends in ".exe"), cut to `cap`.
std::string display_name(std::string_view raw, bool utf8, std::string_view legacy, CharsetCache& cache, size_t cap) {
  raw = raw.substr(0, cap * 2);  // enough input for `cap` output bytes
  std::string out;
  if (is_ascii(raw)) {
    out.assign(raw);
  } else if (utf8 || legacy.empty()) {
    append_guess_utf8(out, raw);
  } else {
    CharsetDecoder dec;
    dec.start(legacy, cache);
    dec.convert(raw, out);
    dec.finish(out);
  }
  for (char& c : out)
    if (static_cast<uint8_t>(c) < 0x20 || c == 0x7F) c = '?';
  if (out.size() > cap) {
    out.resize(cap);
    trim_partial_utf8(out);
  }
  return out;
}

}  // namespace

void ArchiveLister::start(const Limits& limits) {
  max_members_ = limits.max_archive_members;
  max_name_ = std::max<size_t>(limits.max_archive_name, 1);
  mode_ = max_members_ > 0 ? Mode::kUndecided : Mode::kOff;
  total_ = 0;
  head_.clear();
  tail_.clear();
  raw_.clear();
  tar_next_ = 0;
  tar_done_ = false;
  tar_hdr_.clear();
  capture_ = Capture::kNone;
  capture_left_ = 0;
  captured_.clear();
  pending_name_.clear();
}

void ArchiveLister::feed(std::string_view d) {
  if (mode_ == Mode::kOff || d.empty()) return;
  const uint64_t at = total_;
  total_ += d.size();
  const size_t before = head_.size();  // while undecided, every earlier byte is in head_
  if (head_.size() < kHead) head_.append(d.substr(0, std::min(d.size(), kHead - head_.size())));
  if (mode_ == Mode::kUndecided) {
    if (head_.size() <= 262) return;  // the tar magic ends at offset 262
    classify();
    if (mode_ == Mode::kZip) tail_.assign(head_, 0, before);
    if (mode_ == Mode::kTar) tar_consume(std::string_view(head_).substr(0, before), 0);
  }
  if (mode_ == Mode::kZip) {
    tail_.append(d);
    if (tail_.size() > 2 * kTail) tail_.erase(0, tail_.size() - kTail);
  } else if (mode_ == Mode::kTar) {
    tar_consume(d, at);
  } else if (mode_ == Mode::kOff) {
    head_.clear();
  }
}

void ArchiveLister::classify() {
  if (has(head_, 0, "PK\x03\x04") || has(head_, 0, "PK\x05\x06") || has(head_, 0, "PK\x07\x08")) mode_ = Mode::kZip;
  else if (has(head_, 0, "\x1F\x8B\x08")) mode_ = Mode::kGzip;
  else if (has(head_, 257, "ustar")) mode_ = Mode::kTar;
  else mode_ = Mode::kOff;
}

void ArchiveLister::finish(std::string_view detected_type, CharsetCache& cache, std::vector<ArchiveMember>& out) {
  if (mode_ == Mode::kUndecided) {  // a short leaf: all of it is in head_
    classify();
    if (mode_ == Mode::kZip) tail_.assign(head_);
    if (mode_ == Mode::kTar) tar_consume(head_, 0);
  }
  std::string_view format, legacy;
  switch (mode_) {
    case Mode::kZip:
      // OOXML, ODF and Java archives are documents and programs in their own
      // right; their parts are not files a person attached.
      if (detected_type == "application/zip") list_zip();
      format = kZip;
      legacy = "cp437";  // what PKZIP wrote before the UTF-8 flag
      break;
    case Mode::kGzip:
      list_gzip();
      format = kGzip;
      legacy = "iso-8859-1";  // RFC 1952
      break;
    case Mode::kTar:
      format = kTar;  // names were gathered while streaming; no charset is defined
      break;
    default:
      break;
  }
  for (const Raw& r : raw_) {
    ArchiveMember m;
    m.format = format;
    m.name = display_name(r.name, r.utf8, legacy, cache, max_name_);
    m.encrypted = r.encrypted;
    if (!m.name.empty()) out.push_back(std::move(m));
  }
  mode_ = Mode::kOff;
  head_.clear();
  tail_.clear();
  raw_.clear();
}

void ArchiveLister::add(std::string_view name, bool utf8, bool encrypted) {
  if (raw_.size() >= max_members_ || name.empty()) return;
  if (name.back() == '/' || name.back() == '\\') return;  // a directory
  name = name.substr(0, std::max<size_t>(max_name_ * 2, 64));
  for (Raw& r : raw_) {
    if (r.name == name) {
      r.encrypted = r.encrypted || encrypted;
      return;
    }
  }
  raw_.push_back({std::string(name), utf8, encrypted});
}

// ---- ZIP ---------------------------------------------------------------------

void ArchiveLister::list_zip() {
  // The end of central directory record: the last signature with room for
  // its 22 bytes (a comment may follow it).
  const uint64_t tail_at = total_ - tail_.size();
  if (tail_.size() >= 22) {
    const size_t eocd = tail_.rfind("PK\x05\x06", tail_.size() - 22);
    if (eocd != std::string::npos) {
      const uint32_t cd_size = le32(tail_, eocd + 12);
      const uint64_t cd_offset = le32(tail_, eocd + 16);
      const std::string_view tail = tail_;
      // Measured back from the record, so bytes prepended to the archive
      // (self-extractors) do not matter; else where the record says it is.
      // ZIP64 sizes (0xFFFFFFFF) are not followed.
      size_t found = raw_.size();
      if (cd_size != 0xFFFFFFFF && cd_size <= eocd) zip_central(tail.substr(eocd - cd_size, cd_size));
      if (raw_.size() == found && cd_offset != 0xFFFFFFFF && cd_offset >= tail_at && cd_offset - tail_at < eocd)
        zip_central(tail.substr(static_cast<size_t>(cd_offset - tail_at), eocd - static_cast<size_t>(cd_offset - tail_at)));
    }
  }
  // Local headers as well: a name there that the directory leaves out is
  // what a crafted archive would show an unpacker but not a scanner.
  zip_local(head_);
}

void ArchiveLister::zip_central(std::string_view cd) {
  size_t at = 0;
  while (raw_.size() < max_members_ && cd.size() - at >= 46 && has(cd, at, "PK\x01\x02")) {
    const uint32_t flags = le16(cd, at + 8);
    const size_t name_len = le16(cd, at + 28);
    const size_t extra_len = le16(cd, at + 30);
    const size_t comment_len = le16(cd, at + 32);
    if (cd.size() - at - 46 < name_len) break;
    add(cd.substr(at + 46, name_len), (flags & 0x800) != 0, (flags & 0x1) != 0);
    const size_t next = 46 + name_len + extra_len + comment_len;
    if (cd.size() - at < next) break;
    at += next;
  }
}

void ArchiveLister::zip_local(std::string_view head) {
  size_t at = 0;
  bool searching = false;  // after an entry whose size is only known after its data
  while (raw_.size() < max_members_) {
    if (searching) {
      at = head.find("PK\x03\x04", at);
      if (at == std::string_view::npos) return;
    }
    if (at > head.size() || head.size() - at < 30 || !has(head, at, "PK\x03\x04")) return;
    const uint32_t flags = le16(head, at + 6);
    const uint32_t method = le16(head, at + 8);
    const uint64_t csize = le32(head, at + 18);
    const size_t name_len = le16(head, at + 26);
    const size_t extra_len = le16(head, at + 28);
    if (head.size() - at - 30 < name_len) return;
    if (searching && !(method <= 20 || (method >= 93 && method <= 99))) {
      at += 4;  // a chance match inside compressed data
      continue;
    }
    add(head.substr(at + 30, name_len), (flags & 0x800) != 0, (flags & 0x1) != 0);
    if ((flags & 0x8) || csize == 0xFFFFFFFF) {
      // The size follows the data: find the next header by its signature.
      searching = true;
      at += 30 + name_len;
      continue;
    }
    const uint64_t next = 30 + uint64_t{name_len} + extra_len + csize;
    if (head.size() - at < next) return;  // the next header is past what is held
    searching = false;
    at += static_cast<size_t>(next);
  }
}

// ---- gzip --------------------------------------------------------------------

void ArchiveLister::list_gzip() {
  // RFC 1952: ID1 ID2 CM FLG MTIME(4) XFL OS [XLEN extra] [FNAME\0] ...
  std::string_view h = head_;
  if (h.size() < 10) return;
  const auto flg = static_cast<uint8_t>(h[3]);
  size_t at = 10;
  if (flg & 0x04) {  // FEXTRA
    if (h.size() - at < 2) return;
    const size_t xlen = le16(h, at);
    if (h.size() - at - 2 < xlen) return;
    at += 2 + xlen;
  }
  if (!(flg & 0x08)) return;  // FNAME absent: nothing names the file
  std::string_view name = h.substr(at);
  name = name.substr(0, name.find('\0'));
  add(name, false, false);
}

// ---- tar ---------------------------------------------------------------------

void ArchiveLister::tar_consume(std::string_view d, uint64_t at) {
  size_t i = 0;
  while (i < d.size() && !tar_done_) {
    const uint64_t pos = at + i;
    if (pos < tar_next_) {  // member data: skipped, or kept when it names the next member
      const size_t skip = static_cast<size_t>(std::min<uint64_t>(d.size() - i, tar_next_ - pos));
      if (capture_left_ > 0) {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(skip, capture_left_));
        captured_.append(d.substr(i, take));
        capture_left_ -= take;
      }
      i += skip;
      continue;
    }
    const size_t take = std::min(kTarBlock - tar_hdr_.size(), d.size() - i);
    tar_hdr_.append(d.substr(i, take));
    i += take;
    if (tar_hdr_.size() == kTarBlock) {
      tar_header(tar_hdr_);
      tar_hdr_.clear();
    }
  }
}

void ArchiveLister::tar_header(std::string_view h) {
  // The data a long-name or pax entry carried names this member.
  if (capture_ == Capture::kLongName) pending_name_.assign(field(captured_, 0, captured_.size()));
  if (capture_ == Capture::kPax) pending_name_ = pax_path(captured_);
  capture_ = Capture::kNone;
  capture_left_ = 0;
  captured_.clear();

  uint64_t size = 0;
  if (all_zero(h) || !has(h, 257, "ustar") || !tar_checksum_ok(h) || !tar_number(h.substr(124, 12), size) ||
      size > kMaxTarSize) {
    tar_done_ = true;  // the end-of-archive block, or not a tar header at all
    return;
  }
  const uint64_t header_at = tar_next_;
  tar_next_ = header_at + kTarBlock + (size + kTarBlock - 1) / kTarBlock * kTarBlock;
  const char type = h[156];
  if (type == 'L' || type == 'x') {
    capture_ = type == 'L' ? Capture::kLongName : Capture::kPax;
    capture_left_ = std::min<uint64_t>(size, kMaxCapture);
    return;
  }
  std::string name = std::move(pending_name_);
  pending_name_.clear();
  // Regular files, links and sparse files; not directories, devices, FIFOs,
  // volume labels or global headers.
  if (type != '\0' && type != '0' && type != '1' && type != '2' && type != '7' && type != 'S') return;
  if (name.empty()) {
    // POSIX ustar ("ustar\0") keeps a path prefix; GNU ("ustar  ") uses that room otherwise.
    std::string_view prefix = h[262] == '\0' ? field(h, 345, 155) : std::string_view();
    std::string_view base = field(h, 0, 100);
    if (!prefix.empty()) {
      name.assign(prefix);
      name += '/';
    }
    name.append(base);
  }
  add(name, true, false);
  if (raw_.size() >= max_members_) tar_done_ = true;
}

// ---- the whole-bytes form ----------------------------------------------------

std::vector<ArchiveMember> list_archive(std::string_view bytes, const Limits& limits) {
  ArchiveLister lister;
  CharsetCache cache;
  lister.start(limits);
  lister.feed(bytes);
  std::vector<ArchiveMember> out;
  lister.finish(sniff_type(bytes.substr(0, 4096)), cache, out);
  return out;
}

}  // namespace mxguard::mime
