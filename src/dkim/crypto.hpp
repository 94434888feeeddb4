// OpenSSL 3 (EVP only) behind RAII handles: SHA-256 and the two DKIM
// signature schemes, verified over a precomputed SHA-256 digest.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

#include <openssl/evp.h>

#include "mxguard/core/result.hpp"

namespace mxguard::dkim::detail {

enum class KeyType : uint8_t { kRsa, kEd25519 };

using Sha256Digest = std::array<uint8_t, 32>;

struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct EvpPkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct EvpPkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
using EvpMdCtx = std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree>;
using EvpPkey = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;
using EvpPkeyCtx = std::unique_ptr<EVP_PKEY_CTX, EvpPkeyCtxFree>;

// Incremental SHA-256. Throws std::bad_alloc if OpenSSL cannot set up a
// context, which only happens when memory is exhausted.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t len);
  void update(std::string_view s) { update(s.data(), s.size()); }
  Sha256Digest finish();

 private:
  EvpMdCtx ctx_;
};

inline constexpr unsigned kMinRsaBits = 1024;

// Builds a public key from a decoded p= value: DER SubjectPublicKeyInfo (or
// a bare PKCS#1 RSAPublicKey) for RSA, the raw 32 bytes for Ed25519.
Result<EvpPkey> load_public_key(KeyType type, std::string_view key_bytes);

// rsa-sha256: PKCS#1 v1.5 over the digest. ed25519-sha256 (RFC 8463):
// PureEd25519 over the 32 digest bytes themselves.
bool verify_digest(KeyType type, EVP_PKEY* key, const Sha256Digest& digest, std::string_view signature);

}  // namespace mxguard::dkim::detail
