// DKIM verification (RFC 6376, RFC 8463): rsa-sha256 and ed25519-sha256,
// simple and relaxed canonicalisation. Pure: the message streams in, the
// verifier names the key records it needs, the caller looks them up (with
// whatever resolver it has) and hands the TXT strings back.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mxguard::dkim {

enum class DkimStatus : uint8_t {
  kPass,
  kFail,        // signature or body hash does not verify
  kPermError,   // malformed signature, bad or revoked key, unsupported algorithm
  kTempError,   // key lookup failed temporarily
  kPolicy,      // signature expired (x=) or from the future beyond slack
};
std::string_view to_string(DkimStatus s);  // "pass", "fail", "permerror", "temperror", "policy"

struct DkimVerdict {
  DkimStatus status = DkimStatus::kPermError;
  std::string domain;     // d=
  std::string selector;   // s=
  std::string algorithm;  // a=
  std::string detail;     // why, e.g. "body hash mismatch"
};

// The key record lookup result for one name.
struct DkimKeyAnswer {
  enum class Kind : uint8_t { kFound, kNotFound, kTempError } kind = Kind::kNotFound;
  std::vector<std::string> txt;  // each TXT record with its strings concatenated
};

class DkimVerifier {
 public:
  explicit DkimVerifier(unsigned max_signatures = 8);
  ~DkimVerifier();
  DkimVerifier(const DkimVerifier&) = delete;
  DkimVerifier& operator=(const DkimVerifier&) = delete;

  // The whole message as received (CRLF or LF line ends), any chunking.
  void feed(std::string_view bytes);
  void finish();

  // After finish(): "selector._domainkey.domain" for every signature that
  // parsed, deduplicated, in order. Empty when no signature parsed: call
  // verify_with() all the same, or the malformed ones go unreported.
  std::vector<std::string> key_names() const;
  // After finish(): one verdict per DKIM-Signature header (up to the maximum);
  // a signature that did not parse is a permerror. Empty: the message is unsigned.
  // `lookup` maps a key name to its answer; `now_unix` checks t= and x=.
  template <typename Lookup>
  std::vector<DkimVerdict> verify(Lookup&& lookup, int64_t now_unix) const {
    std::vector<DkimKeyAnswer> answers;
    for (const auto& n : key_names()) answers.push_back(lookup(n));
    return verify_with(answers, now_unix);
  }
  // The same, with the answers in the order of key_names().
  std::vector<DkimVerdict> verify_with(const std::vector<DkimKeyAnswer>& answers, int64_t now_unix) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mxguard::dkim
