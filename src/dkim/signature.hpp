// DKIM-Signature field parsing and validation (RFC 6376 §3.5, §6.1.1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "canon.hpp"
#include "crypto.hpp"

namespace mxguard::dkim::detail {

struct Signature {
  KeyType key_type = KeyType::kRsa;
  std::string algorithm;  // a= as written, lower-cased
  std::string domain;     // d=, lower-cased
  std::string selector;   // s=
  std::string auid_domain;  // domain part of i= (or d=), lower-cased
  Canon header_canon = Canon::kSimple;
  Canon body_canon = Canon::kSimple;
  std::vector<std::string> signed_headers;  // h=, lower-cased, in order
  std::string signature;  // decoded b=
  std::string body_hash;  // decoded bh=
  std::optional<uint64_t> body_length;  // l=
  std::optional<uint64_t> timestamp;    // t=
  std::optional<uint64_t> expiration;   // x=
  // Where the b= value sits inside the field value, to blank it for hashing.
  size_t b_value_begin = 0;
  size_t b_value_end = 0;
};

struct SignatureParse {
  Signature sig;      // best effort even on error: d=, s=, a= feed the verdict
  std::string error;  // empty when the signature is usable
};

// `value` is the field value: everything after the colon, final CRLF removed.
SignatureParse parse_signature(std::string_view value);

// "selector._domainkey.domain", lower-cased.
std::string key_name(const Signature& sig);

}  // namespace mxguard::dkim::detail
