// Simple and relaxed canonicalisation (RFC 6376 §3.4): header fields one at
// a time, and the body as a stream hashed on the fly so it is never kept.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crypto.hpp"

namespace mxguard::dkim::detail {

enum class Canon : uint8_t { kSimple, kRelaxed };

// The canonical form of one header field. `field` is the field as received
// (name, colon, value, folds) ending in CRLF.
std::string canon_header(Canon c, std::string_view field);

// Canonicalises and hashes a body fed in arbitrary chunks. Line ends may be
// CRLF or bare LF (both count as one CRLF); a CR not followed by LF is data.
class BodyHasher {
 public:
  BodyHasher(Canon canon, std::optional<uint64_t> limit);

  void update(std::string_view raw);
  void finish();

  Canon canon() const { return canon_; }
  const std::optional<uint64_t>& limit() const { return limit_; }
  // After finish(): SHA-256 of the canonical body cut at l=, and whether the
  // canonical body was shorter than l= (RFC 6376 §3.5 forbids l= beyond it).
  const Sha256Digest& digest() const { return digest_; }
  bool shorter_than_limit() const { return limit_ && produced_ < *limit_; }

 private:
  void content(const char* data, size_t len);
  void emit(const char* data, size_t len);
  void flush();
  bool limit_reached() const { return limit_ && produced_ >= *limit_; }

  Canon canon_;
  std::optional<uint64_t> limit_;
  Sha256 sha_;
  std::string buf_;
  uint64_t produced_ = 0;       // canonical bytes emitted so far (capped at l=)
  uint64_t pending_lines_ = 0;  // line ends held back: they may be trailing empty lines
  bool pending_cr_ = false;     // chunk ended in CR; the next byte decides
  bool pending_wsp_ = false;    // relaxed: a WSP run not yet known to be inside the line
  bool finished_ = false;
  Sha256Digest digest_{};
};

}  // namespace mxguard::dkim::detail
