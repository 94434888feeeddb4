// Digest link tokens: what a link in a quarantine digest may do (recipient,
// message, action, expiry), signed with the config store's digest key
// (Ed25519, named by key id so keys rotate) and encoded URL-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "mxguard/core/result.hpp"
#include "mxguard/store/config_store.hpp"

namespace mxguard::digest {

enum class Action : uint8_t { kRelease, kReleaseAllow, kDelete };
// "release", "release_allow", "delete": the names in tokens and link paths.
std::string_view to_string(Action a);
std::optional<Action> action_from_string(std::string_view s);

struct Claims {
  std::string recipient;   // the digest's recipient (lower case): the owner address
  std::string message_id;  // the quarantined message's spool id
  Action action = Action::kRelease;
  int64_t expires_ms = 0;  // the message's retention end
  std::string key_id;      // set by sign() and verify()
};

// Why a token was refused. Forged and altered tokens both fail the
// signature check: without the secret key they cannot be told apart.
enum class TokenError : uint8_t {
  kMalformed,     // not a token at all (bad encoding, fields, version)
  kUnknownKey,    // names a key this appliance does not have (or dropped)
  kBadSignature,  // forged or altered
  kExpired,       // past the message's retention end
  kUnavailable,   // the store could not be read
};
std::string_view to_string(TokenError e);  // "malformed", "unknown_key", "bad_signature", "expired", "unavailable"

struct TokenRefusal {
  TokenError error;
  std::string message;  // one line for a person
};

// Signs `c` with `key` (c.key_id is replaced by key.id). Fails on fields a
// token cannot carry (empty, line breaks, over 320 bytes).
Result<std::string> sign(const store::DigestKey& key, Claims c);

// Checks a token against the store's keys (signing and retired) at now_ms.
// Nothing is written. The checks run in this order: decoding, key,
// signature, expiry; so an expired forgery is reported as a forgery.
std::variant<Claims, TokenRefusal> verify(const store::ConfigStore& store, std::string_view token, int64_t now_ms);

// A link acts once: the first call for a verified link's recipient, message
// and action returns true (and records it until the link expires), every
// later one false. Call it in the same request as the action, after verify().
Result<bool> claim_link(store::ConfigStore& store, const Claims& c, int64_t now_ms);
// Whether claim_link was called for this link before (reads only).
Result<bool> link_used(const store::ConfigStore& store, const Claims& c);

// The store's signing key, made (and stored) on first use.
Result<store::DigestKey> signing_key(store::ConfigStore& store, int64_t now_ms);
// A fresh key becomes the signing key; the previous one keeps verifying.
// Retired keys older than `keep_retired_ms` (the longest retention, so every
// link they signed has expired) are dropped. Returns the new key.
Result<store::DigestKey> rotate_key(store::ConfigStore& store, int64_t now_ms, int64_t keep_retired_ms);
// A new key (random id and key pair), not stored.
store::DigestKey generate_key(int64_t now_ms);

}  // namespace mxguard::digest
