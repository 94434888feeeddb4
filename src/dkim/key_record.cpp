// Key record parsing: version, key type, p=, and the h=/s=/t= restrictions.
#include "key_record.hpp"

#include "base64.hpp"
#include "mxguard/core/strings.hpp"
#include "tag_list.hpp"

namespace mxguard::dkim::detail {

Result<KeyRecord> parse_key_record(std::string_view txt) {
  auto parsed = parse_tag_list(txt);
  if (!parsed) return Error{"key record syntax: " + parsed.error()};
  const TagList& tags = parsed.value();
  KeyRecord key;

  if (const Tag* v = tags.find("v")) {
    // "MUST be the first tag"; any other version means not a DKIM key.
    if (v->value != "DKIM1" || &tags.tags.front() != v) return Error{"bad key record version"};
  }
  if (const Tag* k = tags.find("k")) {
    if (iequals(k->value, "rsa")) {
      key.key_type = KeyType::kRsa;
    } else if (iequals(k->value, "ed25519")) {
      key.key_type = KeyType::kEd25519;
    } else {
      return Error{"unsupported key type"};
    }
  }
  const Tag* p = tags.find("p");
  if (p == nullptr) return Error{"key record without p="};
  auto bytes = base64_decode(p->value);
  if (!bytes) return Error{"bad p= base64"};
  key.public_key = std::move(*bytes);

  if (const Tag* h = tags.find("h")) {
    key.allows_sha256 = false;
    for (std::string_view alg : split_colon_list(h->value)) key.allows_sha256 = key.allows_sha256 || iequals(alg, "sha256");
  }
  if (const Tag* s = tags.find("s")) {
    key.for_email = false;
    for (std::string_view svc : split_colon_list(s->value)) {
      key.for_email = key.for_email || svc == "*" || iequals(svc, "email");
    }
  }
  if (const Tag* t = tags.find("t")) {
    for (std::string_view flag : split_colon_list(t->value)) {
      key.strict_identity = key.strict_identity || iequals(flag, "s");
    }
  }
  return key;
}

Result<KeyRecord> pick_key_record(const std::vector<std::string>& txts) {
  std::string first_error;
  for (const auto& txt : txts) {
    auto key = parse_key_record(txt);
    if (key) return key;
    if (first_error.empty()) first_error = key.error();
  }
  if (first_error.empty()) return Error{"no key record"};
  return Error{first_error};
}

}  // namespace mxguard::dkim::detail
