// Digest link tokens: "<payload>.<signature>", both base64url without
// padding. The payload is text, one field a line:
//   mxd1 / key id / action / expiry (unix ms) / recipient / message id
// The signature covers a context string and the payload, so no other
// Ed25519 signature made with this key can pass for a token.
#include "mxguard/digest/token.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "mxguard/core/strings.hpp"

namespace mxguard::digest {

namespace {

constexpr std::string_view kVersion = "mxd1";
constexpr std::string_view kContext = "mxguard digest link\n";
constexpr size_t kMaxField = 320;
// Far above a real token (about 250 characters); anything longer is refused
// before it is decoded.
constexpr size_t kMaxToken = 2048;
constexpr int kB64 = sodium_base64_VARIANT_URLSAFE_NO_PADDING;

void init_sodium() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium did not initialise");
}

std::string b64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), kB64), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), kB64);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

std::optional<std::string> unb64(std::string_view text) {
  std::string out(text.size(), '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &len, &end, kB64) != 0 ||
      end != text.data() + text.size())
    return std::nullopt;
  out.resize(len);
  return out;
}

std::string signed_bytes(std::string_view payload) {
  std::string m(kContext);
  m += payload;
  return m;
}

bool field_ok(std::string_view f) {
  return !f.empty() && f.size() <= kMaxField &&
         std::none_of(f.begin(), f.end(), [](char c) { return c == '\n' || c == '\r' || c == '\0'; });
}

std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t nl = s.find('\n', start);
    out.push_back(s.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    if (nl == std::string_view::npos) return out;
    start = nl + 1;
  }
}

TokenRefusal refuse(TokenError e, std::string message) { return {e, std::move(message)}; }

}  // namespace

std::string_view to_string(Action a) {
  switch (a) {
    case Action::kRelease: return "release";
    case Action::kReleaseAllow: return "release_allow";
    case Action::kDelete: return "delete";
  }
  return "?";
}

std::optional<Action> action_from_string(std::string_view s) {
  for (Action a : {Action::kRelease, Action::kReleaseAllow, Action::kDelete})
    if (to_string(a) == s) return a;
  return std::nullopt;
}

std::string_view to_string(TokenError e) {
  switch (e) {
    case TokenError::kMalformed: return "malformed";
    case TokenError::kUnknownKey: return "unknown_key";
    case TokenError::kBadSignature: return "bad_signature";
    case TokenError::kExpired: return "expired";
    case TokenError::kUnavailable: return "unavailable";
  }
  return "?";
}

Result<std::string> sign(const store::DigestKey& key, Claims c) {
  init_sodium();
  if (key.secret_key.size() != crypto_sign_SECRETKEYBYTES) return Error{"digest key has no usable secret key"};
  c.key_id = key.id;
  c.recipient = to_lower(c.recipient);
  for (std::string_view f : {std::string_view(c.key_id), std::string_view(c.recipient), std::string_view(c.message_id)})
    if (!field_ok(f)) return Error{"a digest token field is empty, too long or holds a line break"};
  if (c.expires_ms <= 0) return Error{"a digest token needs an expiry"};
  std::string payload = fmt::format("{}\n{}\n{}\n{}\n{}\n{}", kVersion, c.key_id, to_string(c.action), c.expires_ms,
                                    c.recipient, c.message_id);
  std::string m = signed_bytes(payload);
  std::array<unsigned char, crypto_sign_BYTES> sig{};
  crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(m.data()), m.size(),
                       reinterpret_cast<const unsigned char*>(key.secret_key.data()));
  return b64(payload) + "." + b64(std::string_view(reinterpret_cast<const char*>(sig.data()), sig.size()));
}

std::variant<Claims, TokenRefusal> verify(const store::ConfigStore& store, std::string_view token, int64_t now_ms) {
  init_sodium();
  if (token.empty() || token.size() > kMaxToken) return refuse(TokenError::kMalformed, "not a digest link token");
  size_t dot = token.find('.');
  if (dot == std::string_view::npos || token.find('.', dot + 1) != std::string_view::npos)
    return refuse(TokenError::kMalformed, "not a digest link token");
  auto payload = unb64(token.substr(0, dot));
  auto sig = unb64(token.substr(dot + 1));
  if (!payload || !sig) return refuse(TokenError::kMalformed, "the link token is not valid base64url");
  if (sig->size() != crypto_sign_BYTES) return refuse(TokenError::kMalformed, "the link token's signature is cut");
  auto f = split_lines(*payload);
  if (f.size() != 6 || f[0] != kVersion) return refuse(TokenError::kMalformed, "the link token has an unknown layout");
  Claims c;
  c.key_id = std::string(f[1]);
  auto action = action_from_string(f[2]);
  auto [end, ec] = std::from_chars(f[3].data(), f[3].data() + f[3].size(), c.expires_ms);
  if (!action || ec != std::errc() || end != f[3].data() + f[3].size() || !field_ok(f[1]) || !field_ok(f[4]) ||
      !field_ok(f[5]))
    return refuse(TokenError::kMalformed, "the link token's fields are not valid");
  c.action = *action;
  c.recipient = std::string(f[4]);
  c.message_id = std::string(f[5]);

  auto key = store.digest_key(c.key_id);
  if (!key) return refuse(TokenError::kUnavailable, key.error());
  if (!*key) return refuse(TokenError::kUnknownKey, fmt::format("the link was signed with an unknown key ({})", c.key_id));
  std::string m = signed_bytes(*payload);
  if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig->data()),
                                  reinterpret_cast<const unsigned char*>(m.data()), m.size(),
                                  reinterpret_cast<const unsigned char*>((*key)->public_key.data())) != 0)
    return refuse(TokenError::kBadSignature, "the link's signature does not match (forged or altered)");
  if (now_ms >= c.expires_ms) return refuse(TokenError::kExpired, "the link has expired with the message's retention");
  return c;
}

namespace {

// The key a link's use is recorded under: hashed so it stays short whatever
// the recipient's length.
std::string used_key(const Claims& c) {
  init_sodium();
  std::string link = fmt::format("{}\n{}\n{}", c.recipient, c.message_id, to_string(c.action));
  std::array<unsigned char, 16> h{};
  crypto_generichash(h.data(), h.size(), reinterpret_cast<const unsigned char*>(link.data()), link.size(), nullptr, 0);
  return b64(std::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
}

}  // namespace

Result<bool> claim_link(store::ConfigStore& store, const Claims& c, int64_t now_ms) {
  return store.use_digest_link(used_key(c), c.expires_ms, now_ms);
}

Result<bool> link_used(const store::ConfigStore& store, const Claims& c) { return store.digest_link_used(used_key(c)); }

store::DigestKey generate_key(int64_t now_ms) {
  init_sodium();
  store::DigestKey k;
  std::array<unsigned char, 6> id{};
  randombytes_buf(id.data(), id.size());
  k.id = "k" + b64(std::string_view(reinterpret_cast<const char*>(id.data()), id.size()));
  k.public_key.assign(crypto_sign_PUBLICKEYBYTES, '\0');
  k.secret_key.assign(crypto_sign_SECRETKEYBYTES, '\0');
  crypto_sign_keypair(reinterpret_cast<unsigned char*>(k.public_key.data()),
                      reinterpret_cast<unsigned char*>(k.secret_key.data()));
  k.created_ms = now_ms;
  return k;
}

Result<store::DigestKey> signing_key(store::ConfigStore& store, int64_t now_ms) {
  auto current = store.digest_signing_key();
  if (!current) return Error{current.error()};
  if (*current) return std::move(**current);
  store::DigestKey fresh = generate_key(now_ms);
  auto stored = store.ensure_digest_key(fresh);
  sodium_memzero(fresh.secret_key.data(), fresh.secret_key.size());
  return stored;
}

Result<store::DigestKey> rotate_key(store::ConfigStore& store, int64_t now_ms, int64_t keep_retired_ms) {
  store::DigestKey fresh = generate_key(now_ms);
  auto dropped = store.rotate_digest_key(fresh, now_ms - keep_retired_ms);
  if (!dropped) return Error{dropped.error()};
  return fresh;
}

}  // namespace mxguard::digest
