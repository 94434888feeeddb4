// EVP-based SHA-256, key loading and signature checks for DKIM.
#include "crypto.hpp"

#include <new>
#include <string>

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

namespace mxguard::dkim::detail {

namespace {

// Failed decodes and verifies leave entries on OpenSSL's per-thread error
// queue; a later SSL_get_error() on the same thread would misread them, so
// every public entry point here clears what it added.
class ErrorMark {
 public:
  ErrorMark() { ERR_set_mark(); }
  ~ErrorMark() { ERR_pop_to_mark(); }
  ErrorMark(const ErrorMark&) = delete;
  ErrorMark& operator=(const ErrorMark&) = delete;
};

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) throw std::bad_alloc();
}

void Sha256::update(const void* data, size_t len) {
  if (len != 0) EVP_DigestUpdate(ctx_.get(), data, len);
}

Sha256Digest Sha256::finish() {
  Sha256Digest d{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_.get(), d.data(), &len);
  return d;
}

Result<EvpPkey> load_public_key(KeyType type, std::string_view key_bytes) {
  ErrorMark mark;
  if (type == KeyType::kEd25519) {
    if (key_bytes.size() != 32) return Error{"ed25519 key is not 32 bytes"};
    EvpPkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes(key_bytes), key_bytes.size()));
    if (!key) return Error{"bad ed25519 key"};
    return key;
  }
  const auto len = static_cast<long>(key_bytes.size());
  const unsigned char* p = bytes(key_bytes);
  EvpPkey key(d2i_PUBKEY(nullptr, &p, len));
  if (!key) {
    // A few publishers put the PKCS#1 RSAPublicKey in p= directly.
    p = bytes(key_bytes);
    key.reset(d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, len));
  }
  if (!key) return Error{"bad rsa key"};
  if (EVP_PKEY_is_a(key.get(), "RSA") != 1) return Error{"key in p= is not rsa"};
  const int bits = EVP_PKEY_get_bits(key.get());
  if (bits < static_cast<int>(kMinRsaBits)) {
    return Error{"rsa key too small (" + std::to_string(bits) + " bits)"};
  }
  return key;
}

bool verify_digest(KeyType type, EVP_PKEY* key, const Sha256Digest& digest, std::string_view signature) {
  ErrorMark mark;
  if (type == KeyType::kEd25519) {
    if (signature.size() != 64) return false;
    EvpMdCtx ctx(EVP_MD_CTX_new());
    if (!ctx) return false;
    // Ed25519 takes no message digest of its own: md must be NULL.
    if (EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, key, nullptr) != 1) return false;
    return EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), digest.data(), digest.size()) == 1;
  }
  EvpPkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!ctx) return false;
  if (EVP_PKEY_verify_init(ctx.get()) != 1) return false;
  if (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1) return false;
  if (EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1) return false;
  return EVP_PKEY_verify(ctx.get(), bytes(signature), signature.size(), digest.data(), digest.size()) == 1;
}

}  // namespace mxguard::dkim::detail
