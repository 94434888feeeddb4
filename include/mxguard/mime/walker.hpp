// The streaming MIME walker: message bytes in (any chunking), events out.
// Pure: no I/O, bounded memory; a bomb (depth, parts, decoded size) becomes a
// limit event and the rest of the message is skipped, never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mxguard::mime {

struct Limits {
  unsigned max_depth = 16;                  // multipart/message nesting
  unsigned max_parts = 500;                 // parts of any kind in one message
  uint64_t max_decoded = 64ull << 20;       // decoded bytes over all parts
  size_t max_header_bytes = 256u << 10;     // one header section
  size_t max_line = 1u << 20;               // one raw line (longer lines are cut)
  unsigned max_archive_members = 100;       // member names listed per archive
  size_t max_archive_name = 255;            // bytes of one member name (longer names are cut)
};

enum class LimitHit : uint8_t { kDepth, kParts, kDecodedSize, kHeaderSize };
std::string_view to_string(LimitHit l);  // "depth", "parts", "decoded-size", "header-size"

enum class TextKind : uint8_t { kPlain, kHtml };

// What is known about a part when its header section has been read.
struct PartInfo {
  unsigned index = 0;          // 0 = the message itself, then in order of appearance
  unsigned depth = 0;          // 0 for the top-level message
  std::string content_type;    // lower case "type/subtype"; "text/plain" when absent
  std::string charset;         // lower case, as declared ("" when none)
  std::string transfer_encoding;  // lower case: 7bit, 8bit, binary, base64, quoted-printable
  std::string disposition;     // lower case: inline, attachment, ""
  std::string filename;        // UTF-8, from Content-Disposition filename (RFC 2231/2047) or Content-Type name
  bool is_attachment = false;  // disposition attachment, a file name, or a non-text leaf
  bool is_multipart = false;
  bool is_message = false;     // message/rfc822: its content is walked as a nested message
};

// A file inside a ZIP, gzip or uncompressed tar attachment, read from the
// archive's own directory (nothing is decompressed).
struct ArchiveMember {
  std::string_view format;  // "zip", "gzip", "tar"
  std::string name;         // UTF-8, path as stored ("dir/file.exe"), control characters as '?'
  bool encrypted = false;   // zip: the entry's data is encrypted
};

// Receives the events. Every string_view is valid only during the call.
class Handler {
 public:
  virtual ~Handler() = default;
  // One header field of the message (part 0) or of a part or nested message,
  // unfolded, RFC 2047 encoded-words decoded to UTF-8, name as written.
  virtual void on_header(const PartInfo& /*part*/, std::string_view /*name*/, std::string_view /*value*/) {}
  // The header section of `part` is complete.
  virtual void on_part_begin(const PartInfo& /*part*/) {}
  // Decoded text of a text/* leaf in UTF-8, in pieces as it is decoded. For
  // HTML this is the visible text (tags, comments, script and style removed,
  // entities decoded); the HTML source goes to on_html.
  virtual void on_text(const PartInfo& /*part*/, TextKind /*kind*/, std::string_view /*utf8*/) {}
  virtual void on_html(const PartInfo& /*part*/, std::string_view /*source_utf8*/) {}
  // A URL found in plain text or in an HTML attribute (href, src, action, ...).
  // `host` is lower case without port or userinfo ("" when there is none).
  virtual void on_url(const PartInfo& /*part*/, std::string_view /*url*/, std::string_view /*host*/) {}
  // Decoded content of a non-text leaf (attachments, images, ...), in pieces.
  virtual void on_attachment_data(const PartInfo& /*part*/, std::string_view /*decoded*/) {}
  // A member of an archive leaf, after its data and before its on_part_end.
  // Directories are not reported; at most Limits::max_archive_members per part.
  virtual void on_archive_member(const PartInfo& /*part*/, const ArchiveMember& /*member*/) {}
  // The part is complete. `detected_type` comes from the first bytes of the
  // decoded content ("application/x-dosexec", "application/zip",
  // "application/pdf", "application/x-ole-storage", ...; "" when unknown).
  virtual void on_part_end(const PartInfo& /*part*/, std::string_view /*detected_type*/) {}
  // The raw (undecoded) body of the top-level message, in pieces.
  virtual void on_raw_body(std::string_view /*bytes*/) {}
  // A bound was hit; what follows is not decoded (but raw body events continue).
  virtual void on_limit(LimitHit /*what*/) {}
};

class Walker {
 public:
  Walker(Handler& handler, const Limits& limits = {});
  ~Walker();
  Walker(const Walker&) = delete;
  Walker& operator=(const Walker&) = delete;

  // Message bytes, CRLF or bare LF line ends, split anywhere.
  void feed(std::string_view bytes);
  // End of message: flushes open parts (an unterminated multipart is closed).
  void finish();

  unsigned parts_seen() const;
  uint64_t decoded_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Building blocks, exposed for tests and for other modules.
// RFC 2047: decodes every encoded-word in a header value to UTF-8.
std::string decode_header_words(std::string_view value);
// Converts `bytes` in `charset` to UTF-8 (iconv); invalid input is replaced, never fails.
std::string to_utf8(std::string_view bytes, std::string_view charset);
// The type detected from the first bytes of a file ("" when unknown).
std::string_view sniff_type(std::string_view head);
// The members of a whole ZIP, gzip or ustar file (empty for anything else),
// as the walker reports them for an attachment with these bytes.
std::vector<ArchiveMember> list_archive(std::string_view bytes, const Limits& limits = {});

}  // namespace mxguard::mime
