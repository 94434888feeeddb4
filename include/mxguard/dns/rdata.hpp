// DNS record data as values, and the pure parsers that turn one record's
// RDATA bytes (uncompressed wire format) into them. No I/O here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/net.hpp"
#include "mxguard/core/result.hpp"

namespace mxguard::dns {

// RR type codes (RFC 1035, RFC 3596, RFC 6698) for the records we look up.
inline constexpr int kTypeA = 1;
inline constexpr int kTypePtr = 12;
inline constexpr int kTypeMx = 15;
inline constexpr int kTypeTxt = 16;
inline constexpr int kTypeAaaa = 28;
inline constexpr int kTypeTlsa = 52;

// Names are at most 255 octets in wire form, labels at most 63 (RFC 1035 2.3.4).
inline constexpr size_t kMaxNameWire = 255;
inline constexpr size_t kMaxLabel = 63;

struct TxtRecord {
  std::vector<std::string> strings;  // the character-strings, as published
  std::string text;                  // all of them concatenated (RFC 7208 3.3)
};

struct MxRecord {
  uint16_t preference = 0;
  // Lower case, no trailing dot. Empty for the root name: the null MX of
  // RFC 7505 ("this domain accepts no mail").
  std::string host;
  bool is_null() const { return host.empty(); }
};

// One TLSA record (RFC 6698 2.1), fields as published. Whether a record is
// usable (a known usage, selector and matching type; a digest of the right
// length; for SMTP only DANE-TA(2) and DANE-EE(3), RFC 7672 3.1) is the
// matcher's call, not the parser's: unusable records are skipped, not errors.
struct TlsaRecord {
  uint8_t usage = 0;          // certificate usage: 2 DANE-TA, 3 DANE-EE
  uint8_t selector = 0;       // 0 full certificate, 1 SubjectPublicKeyInfo
  uint8_t matching_type = 0;  // 0 exact, 1 SHA2-256, 2 SHA2-512
  std::string data;           // certificate association data, binary
};

// A wire-format name that fills `wire` exactly, in presentation form: lower
// case, no trailing dot ("" for the root), '.', '\\' and bytes outside
// printable ASCII escaped as in zone files (\. \\ \DDD). Compression pointers
// are refused: RDATA handed to us is already expanded.
Result<std::string> parse_name(std::string_view wire);

// One or more <length><bytes> character-strings (RFC 1035 3.3.14).
Result<TxtRecord> parse_txt(std::string_view rdata);

// A 16-bit preference followed by the exchange's name (RFC 1035 3.3.9).
Result<MxRecord> parse_mx(std::string_view rdata);

// A PTR target (RFC 1035 3.3.12): one name filling the record, as parse_name.
Result<std::string> parse_ptr(std::string_view rdata);

// Three one-octet fields, then the association data: the rest of the record.
Result<TlsaRecord> parse_tlsa(std::string_view rdata);

// Exactly 4 (A) or 16 (AAAA) bytes.
Result<IpAddress> parse_a(std::string_view rdata);
Result<IpAddress> parse_aaaa(std::string_view rdata);

}  // namespace mxguard::dns
