// libFuzzer target for the DKIM verifier: the input is a message fed in
// input-dependent chunks, then verified against a real Ed25519 key, a real
// RSA key, garbage key records and failed lookups. The same input is also a
// body for the streaming body hasher, whose digest must match a whole-body
// reference canonicalisation (the streaming code's riskiest part).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/dkim/dkim.hpp"
// White-box: the body hasher is private to src/dkim.
#include "../../src/dkim/canon.hpp"

namespace {

using mxguard::dkim::DkimKeyAnswer;
using mxguard::dkim::DkimVerifier;

// The public keys of the interop fixtures (tests/unit/dkim/keys.txt), so
// seeds made from those fixtures reach the passing paths.
const std::string kEd25519Record = "v=DKIM1; k=ed25519; p=/c0RvuERf6uvl1ahHfLFQeuX86jue4X0ErDG/G00FPE=";
const std::string kRsaRecord =
    "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsZRoMNau5fUWsr88e1q5jl7oBHfthsUz3Kx9aSIjAU4CLrzlT"
    "DQ5ZWt9vhrRqGA6YMtLo8xbOHl3IPwzbwdLHX9s/JeO+U3kmfIpQYQcLc7OsFuhJxL85PakbxIlt9MpdbTQ7MQ6Xs4wfJpGyZIQWVKUBDU9ZlBF"
    "w5UKlvJEFuHHaUd7L2fS6idC0TT3+vrQrhq1FwQY/oaLd/IbFOX8WnmBn3t1nLNp0UoccikL/QfdmYDw+LiaT9tPsxuc4gPOjbl/ULrhwvV8SAQ"
    "lanUbmQmzG7djOY9lDfuMkXWBtWHn9OXvUah1yuT+ygOn8O+bmjiLqhgCHkd+Cn/o/XRZrQIDAQAB";
const std::vector<std::string> kGarbageRecords = {
    "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
    "v=DKIM1; k=ed25519; p=AAAA",
    "k=rsa; v=DKIM1; t=s:y; h=sha1; p=;;",
    "v=spf1 include:example.org -all",
};
constexpr int64_t kNow = 1'800'000'000;

std::vector<DkimKeyAnswer> answers_all(size_t n, const DkimKeyAnswer& a) { return std::vector<DkimKeyAnswer>(n, a); }

// Reference body canonicalisation over the whole body, the RFC 6376 §3.4.3
// and §3.4.4 wording done line by line: LF alone counts as CRLF first.
std::string reference_body(std::string_view raw, bool relaxed) {
  std::string crlf;
  for (char c : raw) {
    if (c == '\n' && (crlf.empty() || crlf.back() != '\r')) crlf += '\r';
    crlf += c;
  }
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < crlf.size()) {
    size_t end = crlf.find("\r\n", pos);
    if (end == std::string::npos) end = crlf.size();
    std::string line = crlf.substr(pos, end - pos);
    if (relaxed) {
      std::string squeezed;
      for (char c : line) {
        const bool wsp = c == ' ' || c == '\t';
        if (!wsp) squeezed += c;
        else if (squeezed.empty() || squeezed.back() != ' ') squeezed += ' ';
      }
      while (!squeezed.empty() && squeezed.back() == ' ') squeezed.pop_back();
      line = squeezed;
    }
    lines.push_back(line);
    pos = end + 2;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.empty()) return relaxed ? "" : "\r\n";
  std::string out;
  for (const auto& l : lines) out += l + "\r\n";
  return out;
}

// The streaming hasher, fed in uneven chunks, against the reference.
void check_body_hasher(std::string_view body, uint8_t seed) {
  using mxguard::dkim::detail::BodyHasher;
  using mxguard::dkim::detail::Canon;
  for (const bool relaxed : {false, true}) {
    const std::string canon = reference_body(body, relaxed);
    // Without l=, and with an l= inside or just past the canonical body.
    const std::optional<uint64_t> limits[] = {std::nullopt, canon.size() / 3, canon.size() + (seed & 1)};
    for (const auto& limit : limits) {
      BodyHasher h(relaxed ? Canon::kRelaxed : Canon::kSimple, limit);
      uint32_t state = seed;
      for (size_t pos = 0; pos < body.size();) {
        state = state * 1103515245u + 12345u;
        const size_t n = (state >> 16) % 41;
        h.update(body.substr(pos, n));
        pos += n;
      }
      h.finish();
      const std::string hashed = limit ? canon.substr(0, static_cast<size_t>(*limit)) : canon;
      mxguard::dkim::detail::Sha256 ref;
      ref.update(hashed);
      if (h.digest() != ref.finish()) std::abort();
      if (h.shorter_than_limit() != (limit && canon.size() < *limit)) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view msg(reinterpret_cast<const char*>(data), size);
  DkimVerifier v(4);
  // Chunk sizes come from a small generator seeded by the first byte, so the
  // same message is also tried with splits at CR, LF and tag boundaries.
  uint32_t state = size != 0 ? data[0] : 0;
  size_t pos = 0;
  while (pos < msg.size()) {
    state = state * 1103515245u + 12345u;
    const size_t n = (state >> 16) % 67;
    v.feed(msg.substr(pos, n));
    pos += n;
  }
  v.finish();

  const size_t names = v.key_names().size();
  (void)v.verify_with(answers_all(names, {DkimKeyAnswer::Kind::kFound, {kEd25519Record}}), kNow);
  (void)v.verify_with(answers_all(names, {DkimKeyAnswer::Kind::kFound, {kRsaRecord}}), kNow);
  (void)v.verify_with(answers_all(names, {DkimKeyAnswer::Kind::kFound, kGarbageRecords}), kNow);
  // The input's own tail as a key record, and failed or missing lookups.
  (void)v.verify_with(answers_all(names, {DkimKeyAnswer::Kind::kFound, {std::string(msg.substr(size / 2))}}), -1);
  (void)v.verify_with(answers_all(names, {DkimKeyAnswer::Kind::kTempError, {}}), kNow);
  (void)v.verify_with({}, kNow);

  check_body_hasher(msg, size != 0 ? data[0] : 0);
  return 0;
}
