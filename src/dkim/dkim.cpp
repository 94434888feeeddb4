// DkimVerifier: streams the message (headers buffered up to a bound, body
// hashed on the fly), then checks each signature against the key answers.
#include "mxguard/dkim/dkim.hpp"

#include <algorithm>
#include <limits>

#include "canon.hpp"
#include "crypto.hpp"
#include "header_block.hpp"
#include "header_hash.hpp"
#include "key_record.hpp"
#include "signature.hpp"

namespace mxguard::dkim {

namespace {

using detail::BodyHasher;
using detail::HeaderBlock;
using detail::HeaderField;
using detail::Signature;

// Large enough for any honest header section (mailing lists and long
// Received chains stay well below), small enough to bound memory per message.
constexpr size_t kMaxHeaderBytes = 256 * 1024;
// Clock skew allowed for t= before a signature counts as from the future.
constexpr int64_t kFutureSlackSeconds = 300;
constexpr size_t kNone = std::numeric_limits<size_t>::max();

struct SignatureState {
  Signature sig;
  std::string error;  // non-empty: permerror before any key is consulted
  detail::Sha256Digest header_digest{};
  size_t hasher = kNone;
  size_t key = kNone;
};

DkimVerdict make_verdict(const Signature& sig, DkimStatus status, std::string detail) {
  DkimVerdict v;
  v.status = status;
  v.domain = sig.domain;
  v.selector = sig.selector;
  v.algorithm = sig.algorithm;
  v.detail = std::move(detail);
  return v;
}

// The value of a field: after the colon, without the final CRLF.
std::string_view field_value(const HeaderField& f) {
  std::string_view v = f.raw.substr(f.colon + 1);
  if (v.ends_with("\r\n")) v.remove_suffix(2);
  return v;
}

}  // namespace

std::string_view to_string(DkimStatus s) {
  switch (s) {
    case DkimStatus::kPass: return "pass";
    case DkimStatus::kFail: return "fail";
    case DkimStatus::kPermError: return "permerror";
    case DkimStatus::kTempError: return "temperror";
    case DkimStatus::kPolicy: return "policy";
  }
  return "permerror";
}

struct DkimVerifier::Impl {
  explicit Impl(unsigned max) : max_signatures(max), headers(kMaxHeaderBytes) {}

  void headers_complete();
  size_t hasher_for(const Signature& sig);
  DkimVerdict check(const SignatureState& st, const std::vector<DkimKeyAnswer>& answers, int64_t now_unix) const;

  unsigned max_signatures;
  HeaderBlock headers;
  bool in_body = false;
  bool finished = false;
  std::vector<SignatureState> sigs;
  std::vector<BodyHasher> hashers;
  std::vector<std::string> key_names;
};

// Runs once the header section is known: parses the signatures, hashes
// their header data, and sets up one body hasher per (c=, l=) pair so the
// body can be hashed as it streams past.
void DkimVerifier::Impl::headers_complete() {
  in_body = true;
  const std::vector<HeaderField> fields = headers.fields();
  std::vector<const HeaderField*> sig_fields;
  for (const auto& f : fields) {
    if (f.name == "dkim-signature" && sig_fields.size() < max_signatures) sig_fields.push_back(&f);
  }

  if (headers.overflowed()) {
    // No lookups and no hashing: every signature is a permerror, including
    // the ones past the bound, which are known only by name.
    const std::string why = "header section exceeds " + std::to_string(kMaxHeaderBytes) + " bytes";
    for (const HeaderField* f : sig_fields) {
      SignatureState st;
      st.sig = detail::parse_signature(field_value(*f)).sig;
      st.error = why;
      sigs.push_back(std::move(st));
    }
    for (unsigned i = 0; i < headers.signatures_past_bound() && sigs.size() < max_signatures; ++i) {
      sigs.push_back(SignatureState{.error = why});
    }
    return;
  }

  const detail::FieldIndex index(fields);
  for (const HeaderField* f : sig_fields) {
    auto parsed = detail::parse_signature(field_value(*f));
    SignatureState st;
    st.sig = std::move(parsed.sig);
    st.error = std::move(parsed.error);
    if (st.error.empty()) {
      st.header_digest = detail::hash_signed_headers(st.sig, fields, index, *f);
      st.hasher = hasher_for(st.sig);
      const std::string name = detail::key_name(st.sig);
      size_t k = 0;
      while (k < key_names.size() && key_names[k] != name) ++k;
      if (k == key_names.size()) key_names.push_back(name);
      st.key = k;
    }
    sigs.push_back(std::move(st));
  }
}

size_t DkimVerifier::Impl::hasher_for(const Signature& sig) {
  for (size_t i = 0; i < hashers.size(); ++i) {
    if (hashers[i].canon() == sig.body_canon && hashers[i].limit() == sig.body_length) return i;
  }
  hashers.emplace_back(sig.body_canon, sig.body_length);
  return hashers.size() - 1;
}

// RFC 6376 §6.1: signature checks, key retrieval and key checks, body hash,
// then the signature itself.
DkimVerdict DkimVerifier::Impl::check(const SignatureState& st, const std::vector<DkimKeyAnswer>& answers,
                                      int64_t now_unix) const {
  const Signature& sig = st.sig;
  if (!st.error.empty()) return make_verdict(sig, DkimStatus::kPermError, st.error);

  if (sig.timestamp &&
      (*sig.timestamp > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
       static_cast<int64_t>(*sig.timestamp) - kFutureSlackSeconds > now_unix)) {
    return make_verdict(sig, DkimStatus::kPolicy, "signature from the future (t=)");
  }
  if (sig.expiration && now_unix > 0 && *sig.expiration < static_cast<uint64_t>(now_unix)) {
    return make_verdict(sig, DkimStatus::kPolicy, "signature expired (x=)");
  }

  if (st.key >= answers.size()) return make_verdict(sig, DkimStatus::kTempError, "no key lookup answer");
  const DkimKeyAnswer& answer = answers[st.key];
  if (answer.kind == DkimKeyAnswer::Kind::kTempError) {
    return make_verdict(sig, DkimStatus::kTempError, "key lookup failed");
  }
  if (answer.kind == DkimKeyAnswer::Kind::kNotFound || answer.txt.empty()) {
    return make_verdict(sig, DkimStatus::kPermError, "no key record");
  }
  auto record = detail::pick_key_record(answer.txt);
  if (!record) return make_verdict(sig, DkimStatus::kPermError, record.error());
  const detail::KeyRecord& key = record.value();
  if (key.public_key.empty()) return make_verdict(sig, DkimStatus::kPermError, "key revoked");
  if (key.key_type != sig.key_type) return make_verdict(sig, DkimStatus::kPermError, "key type does not match a=");
  if (!key.allows_sha256) return make_verdict(sig, DkimStatus::kPermError, "key does not allow sha256 (h=)");
  if (!key.for_email) return make_verdict(sig, DkimStatus::kPermError, "key not for email (s=)");
  if (key.strict_identity && sig.auid_domain != sig.domain) {
    return make_verdict(sig, DkimStatus::kPermError, "i= domain differs from d= under t=s");
  }
  auto pkey = detail::load_public_key(key.key_type, key.public_key);
  if (!pkey) return make_verdict(sig, DkimStatus::kPermError, pkey.error());

  const BodyHasher& body = hashers[st.hasher];
  if (body.shorter_than_limit()) return make_verdict(sig, DkimStatus::kFail, "body shorter than l=");
  const auto& digest = body.digest();
  if (sig.body_hash.size() != digest.size() ||
      !std::equal(digest.begin(), digest.end(), reinterpret_cast<const uint8_t*>(sig.body_hash.data()))) {
    return make_verdict(sig, DkimStatus::kFail, "body hash mismatch");
  }
  if (!detail::verify_digest(sig.key_type, pkey.value().get(), st.header_digest, sig.signature)) {
    return make_verdict(sig, DkimStatus::kFail, "signature does not verify");
  }
  return make_verdict(sig, DkimStatus::kPass, "");
}

DkimVerifier::DkimVerifier(unsigned max_signatures) : impl_(std::make_unique<Impl>(max_signatures)) {}

DkimVerifier::~DkimVerifier() = default;

void DkimVerifier::feed(std::string_view bytes) {
  Impl& m = *impl_;
  if (m.finished) return;
  if (!m.in_body) {
    const size_t used = m.headers.consume(bytes);
    if (!m.headers.done()) return;
    m.headers_complete();
    bytes.remove_prefix(used);
  }
  for (auto& h : m.hashers) h.update(bytes);
}

void DkimVerifier::finish() {
  Impl& m = *impl_;
  if (m.finished) return;
  if (!m.in_body) {
    m.headers.finish();
    m.headers_complete();
  }
  for (auto& h : m.hashers) h.finish();
  m.finished = true;
}

std::vector<std::string> DkimVerifier::key_names() const {
  if (!impl_->finished) return {};
  return impl_->key_names;
}

std::vector<DkimVerdict> DkimVerifier::verify_with(const std::vector<DkimKeyAnswer>& answers,
                                                   int64_t now_unix) const {
  std::vector<DkimVerdict> out;
  if (!impl_->finished) return out;
  out.reserve(impl_->sigs.size());
  for (const auto& st : impl_->sigs) out.push_back(impl_->check(st, answers, now_unix));
  return out;
}

}  // namespace mxguard::dkim
