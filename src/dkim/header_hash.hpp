// The header half of a DKIM signature (RFC 6376 §5.4, §3.7): the h= fields
// picked bottom-up, then the signature field itself with b= blanked.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "crypto.hpp"
#include "header_block.hpp"
#include "signature.hpp"

namespace mxguard::dkim::detail {

// Field positions by lower-cased name, top to bottom.
class FieldIndex {
 public:
  explicit FieldIndex(const std::vector<HeaderField>& fields);
  const std::vector<size_t>* find(const std::string& name) const;

 private:
  std::unordered_map<std::string, std::vector<size_t>> by_name_;
};

// SHA-256 of the canonical signed header data for `sig`, whose own field is
// `own`. Names in h= beyond the instances present (over-signing) add nothing.
Sha256Digest hash_signed_headers(const Signature& sig, const std::vector<HeaderField>& fields,
                                 const FieldIndex& index, const HeaderField& own);

}  // namespace mxguard::dkim::detail
