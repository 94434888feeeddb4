// Real file types from magic bytes: what an attachment is, whatever its name
// and Content-Type claim. Only checks that need the first few KiB.
#include <cstdint>
#include <cstring>
#include <string_view>

#include "mxguard/core/strings.hpp"
#include "mxguard/mime/walker.hpp"

namespace mxguard::mime {
namespace {

inline bool has(std::string_view s, size_t at, std::string_view magic) {
  return s.size() >= at + magic.size() && std::memcmp(s.data() + at, magic.data(), magic.size()) == 0;
}

inline uint32_t le16(std::string_view s, size_t at) {
  return static_cast<uint8_t>(s[at]) | (uint32_t{static_cast<uint8_t>(s[at + 1])} << 8);
}
inline uint32_t le32(std::string_view s, size_t at) { return le16(s, at) | (le16(s, at + 2) << 16); }
inline uint32_t be32(std::string_view s, size_t at) {
  return (uint32_t{static_cast<uint8_t>(s[at])} << 24) | (uint32_t{static_cast<uint8_t>(s[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(s[at + 2])} << 8) | static_cast<uint8_t>(s[at + 3]);
}

// Walks the zip local file headers within `head` for the entries that tell
// an OOXML or ODF document from a plain archive.
std::string_view sniff_zip(std::string_view head) {
  size_t at = 0;
  for (int entries = 0; entries < 32 && head.size() >= at + 30 && has(head, at, "PK\x03\x04"); ++entries) {
    const uint32_t flags = le16(head, at + 6);
    const uint32_t method = le16(head, at + 8);
    const uint32_t csize = le32(head, at + 18);
    const uint32_t name_len = le16(head, at + 26);
    const uint32_t extra_len = le16(head, at + 28);
    if (head.size() < at + 30 + name_len) break;
    std::string_view name = head.substr(at + 30, name_len);
    if (name.starts_with("word/")) return "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    if (name.starts_with("xl/")) return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    if (name.starts_with("ppt/")) return "application/vnd.openxmlformats-officedocument.presentationml.presentation";
    if (entries == 0 && name == "mimetype" && method == 0) {
      // ODF: the first entry, stored, holds the media type itself.
      size_t data = at + 30 + name_len + extra_len;
      std::string_view t = head.substr(std::min(head.size(), data), std::min<size_t>(csize, 80));
      // Answer with our own constants: the result must not point into `head`.
      static constexpr std::string_view kOdf[] = {
          "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
          "application/vnd.oasis.opendocument.presentation", "application/vnd.oasis.opendocument.graphics"};
      for (auto odf : kOdf)
        if (t == odf) return odf;
    }
    if (name == "META-INF/MANIFEST.MF") return "application/java-archive";
    if (flags & 0x08) break;  // sizes follow the data: cannot skip to the next entry
    at += 30 + size_t{name_len} + extra_len + csize;
  }
  return "application/zip";
}

bool looks_like_html(std::string_view s) {
  if (s.starts_with("\xEF\xBB\xBF")) s.remove_prefix(3);
  while (!s.empty() && (s[0] == ' ' || s[0] == '\t' || s[0] == '\r' || s[0] == '\n')) s.remove_prefix(1);
  static constexpr std::string_view kStarts[] = {"<!doctype html", "<html", "<head", "<body",
                                                 "<script", "<iframe", "<meta", "<title"};
  for (auto p : kStarts)
    if (istarts_with(s, p)) return true;
  return false;
}

}  // namespace

std::string_view sniff_type(std::string_view h) {
  if (h.size() < 2) return "";
  if (has(h, 0, "MZ")) return "application/x-dosexec";
  if (has(h, 0, "\x7F" "ELF")) return "application/x-executable";
  if (h.size() >= 4) {
    const uint32_t m = be32(h, 0);
    if (m == 0xFEEDFACE || m == 0xFEEDFACF || m == 0xCEFAEDFE || m == 0xCFFAEDFE)
      return "application/x-mach-binary";
    if (m == 0xCAFEBABE && h.size() >= 8) {
      // Fat Mach-O and Java class share the magic: a fat header then counts
      // architectures (small), a class file has its version (>= 45) there.
      return be32(h, 4) < 45 ? "application/x-mach-binary" : "application/java-vm";
    }
  }
  if (has(h, 0, "PK\x03\x04")) return sniff_zip(h);
  if (has(h, 0, "PK\x05\x06") || has(h, 0, "PK\x07\x08")) return "application/zip";
  if (has(h, 0, "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1")) return "application/x-ole-storage";
  if (has(h, 0, "{\\rt")) return "application/rtf";  // Word opens "{\rt" without the "f"
  if (has(h, 0, "\x1F\x8B")) return "application/gzip";
  if (has(h, 0, "Rar!\x1A\x07")) return "application/vnd.rar";
  if (has(h, 0, "7z\xBC\xAF\x27\x1C")) return "application/x-7z-compressed";
  if (has(h, 0, std::string_view("MSCF\0\0\0\0", 8))) return "application/vnd.ms-cab-compressed";
  if (has(h, 7, "**ACE**")) return "application/x-ace-compressed";
  if (has(h, 0, "BZh")) return "application/x-bzip2";
  if (has(h, 0, std::string_view("\xFD" "7zXZ\0", 6))) return "application/x-xz";
  if (has(h, 257, "ustar")) return "application/x-tar";
  if (has(h, 0, std::string_view("L\0\0\0\x01\x14\x02\0", 8))) return "application/x-ms-shortcut";
  if (has(h, 0, "ITSF")) return "application/vnd.ms-htmlhelp";
  if (has(h, 0, "\x89PNG\r\n\x1A\n")) return "image/png";
  if (has(h, 0, "\xFF\xD8\xFF")) return "image/jpeg";
  if (has(h, 0, "GIF87a") || has(h, 0, "GIF89a")) return "image/gif";
  if (has(h, 0, "%!PS")) return "application/postscript";
  // Readers accept the PDF header anywhere in the first KiB.
  if (std::string_view(h.data(), std::min<size_t>(h.size(), 1024)).find("%PDF-") != std::string_view::npos)
    return "application/pdf";
  if (has(h, 0, "#!")) return "text/x-shellscript";
  if (looks_like_html(h)) return "text/html";
  return "";
}

}  // namespace mxguard::mime
