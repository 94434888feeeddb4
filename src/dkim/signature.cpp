// DKIM-Signature tag validation: required tags, algorithms, identities.
#include "signature.hpp"

#include "base64.hpp"
#include "mxguard/core/strings.hpp"
#include "tag_list.hpp"

namespace mxguard::dkim::detail {

namespace {

constexpr bool is_domain_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// d= and s= become part of a DNS name, so only dot-separated labels of
// letters, digits, '-' and '_' are accepted (A-labels for IDNs).
bool valid_dns_labels(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t label = 0;
  for (char c : s) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (is_domain_char(c)) {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return label != 0;
}

std::optional<Canon> parse_canon(std::string_view s) {
  if (iequals(s, "simple")) return Canon::kSimple;
  if (iequals(s, "relaxed")) return Canon::kRelaxed;
  return std::nullopt;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// i= is dkim-quoted-printable: =XX escapes, FWS to be ignored.
std::optional<std::string> decode_dkim_qp(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (is_fws(c)) continue;
    if (c != '=') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_value(s[i + 1]);
    const int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

bool is_same_or_subdomain(std::string_view sub, std::string_view parent) {
  if (sub == parent) return true;
  return sub.size() > parent.size() && sub.ends_with(parent) && sub[sub.size() - parent.size() - 1] == '.';
}

}  // namespace

SignatureParse parse_signature(std::string_view value) {
  SignatureParse out;
  Signature& sig = out.sig;
  auto fail = [&out](std::string why) {
    out.error = std::move(why);
    return out;
  };

  auto parsed = parse_tag_list(value);
  if (!parsed) return fail("signature syntax: " + parsed.error());
  const TagList& tags = parsed.value();

  // Filled first so that even a rejected signature reports who signed it.
  if (const Tag* d = tags.find("d")) sig.domain = to_lower(d->value);
  if (const Tag* s = tags.find("s")) sig.selector = std::string(s->value);
  if (const Tag* a = tags.find("a")) sig.algorithm = to_lower(a->value);

  for (const char* required : {"v", "a", "b", "bh", "d", "h", "s"}) {
    if (tags.find(required) == nullptr) return fail(std::string("missing ") + required + "=");
  }
  if (tags.find("v")->value != "1") return fail("unsupported v=");

  if (sig.algorithm == "rsa-sha256") {
    sig.key_type = KeyType::kRsa;
  } else if (sig.algorithm == "ed25519-sha256") {
    sig.key_type = KeyType::kEd25519;
  } else if (sig.algorithm == "rsa-sha1") {
    // RFC 8301: rsa-sha1 signatures have permanently failed evaluation.
    return fail("weak algorithm rsa-sha1");
  } else {
    return fail("unsupported algorithm");
  }

  const Tag* b = tags.find("b");
  auto b_bytes = base64_decode(b->value);
  if (!b_bytes || b_bytes->empty()) return fail("bad b= base64");
  sig.signature = std::move(*b_bytes);
  sig.b_value_begin = b->value_begin;
  sig.b_value_end = b->value_end;

  auto bh_bytes = base64_decode(tags.find("bh")->value);
  if (!bh_bytes || bh_bytes->empty()) return fail("bad bh= base64");
  sig.body_hash = std::move(*bh_bytes);

  if (!valid_dns_labels(sig.domain)) return fail("bad d=");
  if (!valid_dns_labels(sig.selector)) return fail("bad s=");

  if (const Tag* c = tags.find("c")) {
    const std::string_view v = c->value;
    const size_t slash = v.find('/');
    auto h = parse_canon(v.substr(0, slash));
    auto body = slash == std::string_view::npos ? std::optional<Canon>(Canon::kSimple) : parse_canon(v.substr(slash + 1));
    if (!h || !body) return fail("bad c=");
    sig.header_canon = *h;
    sig.body_canon = *body;
  }

  for (std::string_view name : split_colon_list(tags.find("h")->value)) {
    if (name.empty()) return fail("bad h=");
    sig.signed_headers.push_back(to_lower(name));
  }
  bool from_signed = false;
  for (const auto& name : sig.signed_headers) from_signed = from_signed || name == "from";
  if (!from_signed) return fail("From not signed");

  if (const Tag* i = tags.find("i")) {
    auto auid = decode_dkim_qp(i->value);
    const size_t at = auid ? auid->rfind('@') : std::string::npos;
    if (at == std::string::npos) return fail("bad i=");
    sig.auid_domain = to_lower(std::string_view(*auid).substr(at + 1));
    if (!is_same_or_subdomain(sig.auid_domain, sig.domain)) return fail("i= not within d=");
  } else {
    sig.auid_domain = sig.domain;
  }

  // l= may have up to 76 digits, but no body is longer than 64 bits can
  // count, so a value that does not fit is rejected like garbage.
  if (const Tag* l = tags.find("l")) {
    sig.body_length = parse_u64(l->value);
    if (!sig.body_length) return fail("bad l=");
  }
  if (const Tag* q = tags.find("q")) {
    bool dns_txt = false;
    for (std::string_view m : split_colon_list(q->value)) dns_txt = dns_txt || iequals(m, "dns/txt");
    if (!dns_txt) return fail("unsupported q=");
  }
  if (const Tag* t = tags.find("t")) {
    sig.timestamp = parse_u64(t->value);
    if (!sig.timestamp) return fail("bad t=");
  }
  if (const Tag* x = tags.find("x")) {
    sig.expiration = parse_u64(x->value);
    if (!sig.expiration) return fail("bad x=");
    if (sig.timestamp && *sig.expiration < *sig.timestamp) return fail("x= before t=");
  }
  return out;
}

std::string key_name(const Signature& sig) {
  return to_lower(sig.selector) + "._domainkey." + sig.domain;
}

}  // namespace mxguard::dkim::detail
