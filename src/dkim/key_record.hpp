// DKIM key records (RFC 6376 §3.6.1, RFC 8463): the TXT data published at
// selector._domainkey.domain.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "crypto.hpp"
#include "mxguard/core/result.hpp"

namespace mxguard::dkim::detail {

struct KeyRecord {
  KeyType key_type = KeyType::kRsa;
  std::string public_key;        // decoded p=; empty means revoked
  bool allows_sha256 = true;     // h= absent or lists sha256
  bool for_email = true;         // s= absent or lists * or email
  bool strict_identity = false;  // t=s: i= domain must equal d=
};

// Parses one record (its TXT strings already concatenated).
Result<KeyRecord> parse_key_record(std::string_view txt);

// The first of several records that parses wins; errors name the first
// failure when none does.
Result<KeyRecord> pick_key_record(const std::vector<std::string>& txts);

}  // namespace mxguard::dkim::detail
