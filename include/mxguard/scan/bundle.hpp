// Rule bundles: a RuleSet compiled into Hyperscan databases (one per target,
// one per header name), serialised into one signed file that the engine loads
// and shares read-only between its shards.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/result.hpp"
#include "mxguard/scan/rules.hpp"

struct hs_database;

namespace mxguard::scan {

// One Hyperscan database and the target it scans.
struct TargetDb {
  Target target = Target::kText;
  std::string header;  // lower-case header name, for Target::kHeader
  hs_database* db = nullptr;
  size_t patterns = 0;
};

// The CPU a bundle's databases are compiled for. A bundle is built once and
// loaded on other machines (the build host's factory bundle in an image, an
// operator's workstation pushing to appliances), so by default it is built
// for any x86-64 that Hyperscan runs on (kPortable: generic tuning, no AVX2
// or AVX-512 paths). kHost uses every feature of the machine compiling; such
// databases are refused by a CPU without them and must then be compiled
// again there, at each load.
enum class Platform { kPortable, kHost };

// Compiled rules, immutable once built; shards share them through shared_ptr
// and keep their own scratch.
class CompiledRules {
 public:
  ~CompiledRules();
  CompiledRules(const CompiledRules&) = delete;
  CompiledRules& operator=(const CompiledRules&) = delete;

  // Compiles every pattern; an error names the file, line and rule.
  static Result<std::shared_ptr<const CompiledRules>> compile(RuleSet rules, Platform platform = Platform::kHost);

  const RuleSet& rules() const { return rules_; }
  const std::vector<TargetDb>& databases() const { return dbs_; }
  // The database for a target ("" header for non-header targets), or null.
  const hs_database* db(Target t) const { return by_target_[static_cast<size_t>(t)]; }
  const hs_database* header_db(std::string_view lower_name) const;
  // Built-in rule indexes, so the scanner does not walk every rule.
  const std::vector<uint32_t>& builtins() const { return builtins_; }

  // The bundle body (manifest + databases), unsigned.
  std::string serialize(std::string_view name, int64_t created_ms) const;
  // Parses a body; databases built for another CPU are recompiled from the rules.
  static Result<std::shared_ptr<const CompiledRules>> deserialize(std::string_view body);

  // `base` with more rules and score overrides on top (the local layer): the
  // extra rules come after the base's (ids unique over both), then the
  // overrides are applied. Only the databases of targets that gain patterns
  // are compiled again, for this CPU; the others are shared with `base`.
  static Result<std::shared_ptr<const CompiledRules>> with_layer(const std::shared_ptr<const CompiledRules>& base,
                                                                 std::vector<Rule> extra,
                                                                 const std::vector<ScoreOverride>& overrides);

 private:
  CompiledRules() = default;
  Status build_indexes();
  void add_db(Target target, std::string header, std::shared_ptr<hs_database> db, size_t patterns);

  RuleSet rules_;
  std::vector<TargetDb> dbs_;
  // owned_[i] owns dbs_[i].db; a layered set shares the base's untouched ones.
  std::vector<std::shared_ptr<hs_database>> owned_;
  std::array<const hs_database*, kTargetCount> by_target_{};
  std::vector<uint32_t> builtins_;
};

// Ed25519 keys for signing bundles (libsodium).
struct SigningKey {
  std::array<uint8_t, 64> secret{};
  std::array<uint8_t, 32> public_key{};
};
SigningKey generate_signing_key();
// Key files are one line: "mxguard-rules-key " + base64(secret key).
std::string encode_signing_key(const SigningKey& key);
Result<SigningKey> decode_signing_key(std::string_view text);
std::string encode_public_key(const std::array<uint8_t, 32>& key);  // base64
Result<std::array<uint8_t, 32>> decode_public_key(std::string_view text);

// What a bundle file says about itself.
struct BundleInfo {
  std::string name;
  int64_t created_ms = 0;
  size_t rules = 0;
  std::string digest;        // SHA-256 of the body, hex: the bundle's identity
  std::string signed_by;     // base64 public key ("" when unsigned)
};

// A bundle file: body followed by a signature block.
std::string sign_bundle(std::string_view body, const SigningKey& key);
// Splits a bundle file, checks the signature against `trusted` keys, and
// returns the body. An unsigned bundle or an unknown key is refused.
Result<std::string_view> verify_bundle(std::string_view file, const std::vector<std::array<uint8_t, 32>>& trusted,
                                       BundleInfo* info = nullptr);
// The body of a bundle file without checking its signature (factory bundles,
// which are built on the box from the installed rules, carry none).
Result<std::string_view> bundle_body(std::string_view file, BundleInfo* info = nullptr);

}  // namespace mxguard::scan
