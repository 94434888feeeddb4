// The active rule bundle of a state dir: loading it (with its signature
// checked against the trusted keys), and the factory bundle a new state dir
// starts with, built from the installed rules/.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mxguard/core/config.hpp"
#include "mxguard/core/result.hpp"
#include "mxguard/scan/bundle.hpp"
#include "mxguard/store/config_store.hpp"

namespace mxguard::scan {

struct ActiveRules {
  uint64_t seq = 0;
  std::shared_ptr<const CompiledRules> rules;
  BundleInfo info;
  bool factory = false;
  // The factory bundle this one replaced (0: none): new binaries came with
  // new factory rules while the old factory bundle was active.
  uint64_t replaced_factory = 0;
};

// scan.rules_dir when set, else the installed rules, else the source tree's.
std::string rules_dir_for(const ScanConfig& cfg);

// The metadata stored next to a bundle (JSON), and what it says back.
std::string bundle_meta(const BundleInfo& info, bool factory, int64_t stored_ms);

Result<std::vector<std::array<uint8_t, 32>>> trusted_keys(const store::ConfigStore& store);

// Loads and checks bundle `seq`: a signed one must verify against a trusted
// key; an unsigned one is accepted only when stored as the factory bundle.
Result<ActiveRules> load_bundle(const store::ConfigStore& store, uint64_t seq);

// The active bundle; when the state dir has none yet, the factory bundle is
// compiled from `rules_dir`, stored and made active first.
Result<ActiveRules> load_active(store::ConfigStore& store, const std::string& rules_dir);

// The operator's local layer: the *.rules files of `local_dir` (rules and
// `score RULE_ID N` overrides; no directory is an empty layer) put on top of
// `base`, whichever bundle that is. Errors name the file and line. `layer`
// receives what the files held.
Result<std::shared_ptr<const CompiledRules>> with_local_layer(const std::shared_ptr<const CompiledRules>& base,
                                                              const std::string& local_dir, RuleFile* layer = nullptr);

// Compiles a rules directory into a bundle file (signed when `key` is given),
// for any x86-64 unless `platform` says this machine's CPU.
Result<std::string> build_bundle_file(const std::string& dir, const std::string& name, const SigningKey* key,
                                      size_t* rule_count = nullptr, Platform platform = Platform::kPortable);

}  // namespace mxguard::scan
