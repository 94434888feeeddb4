// Header selection and hashing for DKIM verification.
#include "header_hash.hpp"

#include <string_view>

namespace mxguard::dkim::detail {

FieldIndex::FieldIndex(const std::vector<HeaderField>& fields) {
  for (size_t i = 0; i < fields.size(); ++i) {
    if (!fields[i].name.empty()) by_name_[fields[i].name].push_back(i);
  }
}

const std::vector<size_t>* FieldIndex::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second;
}

Sha256Digest hash_signed_headers(const Signature& sig, const std::vector<HeaderField>& fields,
                                 const FieldIndex& index, const HeaderField& own) {
  Sha256 sha;
  // How many instances of each name h= has used so far, counted from the
  // bottom: a repeated name takes the next field up.
  std::unordered_map<std::string_view, size_t> used;
  for (const auto& name : sig.signed_headers) {
    const std::vector<size_t>* instances = index.find(name);
    if (instances == nullptr) continue;
    size_t& n = used[name];
    if (n >= instances->size()) continue;
    const HeaderField& f = fields[(*instances)[instances->size() - 1 - n]];
    ++n;
    sha.update(canon_header(sig.header_canon, f.raw));
  }
  // The signature's own field, with the whole b= value (FWS included)
  // removed, and without its final CRLF.
  const size_t value_at = own.colon + 1;
  std::string blanked(own.raw.substr(0, value_at + sig.b_value_begin));
  blanked.append(own.raw.substr(value_at + sig.b_value_end));
  std::string canon = canon_header(sig.header_canon, blanked);
  if (std::string_view(canon).ends_with("\r\n")) canon.resize(canon.size() - 2);
  sha.update(canon);
  return sha.finish();
}

}  // namespace mxguard::dkim::detail
