// The active rule bundle: load and check it, or build the factory one.
#include "mxguard/scan/active.hpp"

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace mxguard::scan {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::string rules_dir_for(const ScanConfig& cfg) {
  if (!cfg.rules_dir.empty()) return cfg.rules_dir;
  if (is_dir(MXGUARD_RULES_DIR)) return MXGUARD_RULES_DIR;
  return MXGUARD_SOURCE_RULES_DIR;
}

std::string bundle_meta(const BundleInfo& info, bool factory, int64_t stored_ms) {
  return nlohmann::json{{"name", info.name},       {"digest", info.digest},       {"rules", info.rules},
                        {"created_ms", info.created_ms}, {"stored_ms", stored_ms}, {"signed_by", info.signed_by},
                        {"factory", factory}}
      .dump();
}

Result<std::vector<std::array<uint8_t, 32>>> trusted_keys(const store::ConfigStore& store) {
  auto keys = store.trusted_keys();
  if (!keys) return Error{keys.error()};
  std::vector<std::array<uint8_t, 32>> out;
  for (const auto& [name, text] : *keys) {
    auto k = decode_public_key(text);
    if (!k) return Error{fmt::format("trusted key {}: {}", name, k.error())};
    out.push_back(*k);
  }
  return out;
}

Result<ActiveRules> load_bundle(const store::ConfigStore& store, uint64_t seq) {
  auto records = store.bundles();
  if (!records) return Error{records.error()};
  bool factory = false;
  bool found = false;
  for (const auto& r : *records) {
    if (r.seq != seq) continue;
    found = true;
    auto m = nlohmann::json::parse(r.meta, nullptr, false);
    factory = m.is_object() && m.value("factory", false);
  }
  if (!found) return Error{fmt::format("rule bundle {} is not stored", seq)};
  auto file = store.bundle_file(seq);
  if (!file) return Error{file.error()};
  if (!*file) return Error{fmt::format("rule bundle {} is not stored", seq)};
  ActiveRules out;
  out.seq = seq;
  out.factory = factory;
  Result<std::string_view> body = Error{""};
  if (factory) {
    body = bundle_body(**file, &out.info);
  } else {
    auto keys = trusted_keys(store);
    if (!keys) return Error{keys.error()};
    body = verify_bundle(**file, *keys, &out.info);
  }
  if (!body) return Error{fmt::format("rule bundle {}: {}", seq, body.error())};
  auto compiled = CompiledRules::deserialize(*body);
  if (!compiled) return Error{fmt::format("rule bundle {}: {}", seq, compiled.error())};
  out.rules = std::move(*compiled);
  return out;
}

Result<std::string> build_bundle_file(const std::string& dir, const std::string& name, const SigningKey* key,
                                      size_t* rule_count, Platform platform) {
  auto set = load_rules_dir(dir);
  if (!set) return Error{set.error()};
  size_t n = set->rules.size();
  auto compiled = CompiledRules::compile(std::move(*set), platform);
  if (!compiled) return Error{compiled.error()};
  if (rule_count) *rule_count = n;
  std::string body = (*compiled)->serialize(name, now_ms());
  if (key) return sign_bundle(body, *key);
  // Unsigned: the length-prefixed body and the "NONE" trailer.
  std::string file;
  uint32_t len = static_cast<uint32_t>(body.size());
  for (int i = 0; i < 4; ++i) file += static_cast<char>((len >> (8 * i)) & 0xff);
  file += body;
  file += "NONE";
  return file;
}

Result<std::shared_ptr<const CompiledRules>> with_local_layer(const std::shared_ptr<const CompiledRules>& base,
                                                              const std::string& local_dir, RuleFile* layer) {
  auto files = read_rules_dir(local_dir, false, true);
  if (!files) return Error{fmt::format("local rules: {}", files.error())};
  if (layer) *layer = *files;
  auto out = CompiledRules::with_layer(base, std::move(files->rules), files->overrides);
  if (!out) return Error{fmt::format("local rules: {}", out.error())};
  return out;
}

namespace {

// The factory bundle built with the binaries for these rules, when there is one.
std::optional<std::string> prebuilt_factory(const std::string& rules_dir) {
  std::string path;
  if (rules_dir == MXGUARD_RULES_DIR) path = MXGUARD_FACTORY_BUNDLE;
  else if (rules_dir == MXGUARD_SOURCE_RULES_DIR) path = MXGUARD_BUILD_FACTORY_BUNDLE;
  else return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

Result<ActiveRules> load_active(store::ConfigStore& store, const std::string& rules_dir) {
  auto active = store.active_bundle();
  if (!active) return Error{active.error()};
  if (*active) {
    auto loaded = load_bundle(store, **active);
    if (!loaded || !loaded->factory) return loaded;
    // New binaries bring new factory rules: while no pushed bundle was ever
    // made active over the factory one, the new factory bundle replaces the
    // old (the local layer is applied on top of whichever is active).
    auto prebuilt = prebuilt_factory(rules_dir);
    if (!prebuilt) return loaded;
    BundleInfo info;
    if (!bundle_body(*prebuilt, &info) || info.digest == loaded->info.digest) return loaded;
    auto seq = store.add_bundle(*prebuilt, bundle_meta(info, true, now_ms()));
    if (!seq) return Error{fmt::format("new factory rules: {}", seq.error())};
    auto upgraded = load_bundle(store, *seq);
    if (upgraded) upgraded->replaced_factory = loaded->seq;
    return upgraded;
  }
  Result<std::string> file = Error{""};
  if (auto prebuilt = prebuilt_factory(rules_dir); prebuilt && bundle_body(*prebuilt).ok()) file = std::move(*prebuilt);
  else file = build_bundle_file(rules_dir, "factory", nullptr);
  if (!file) return Error{fmt::format("factory rules: {}", file.error())};
  BundleInfo info;
  auto body = bundle_body(*file, &info);
  if (!body) return Error{body.error()};
  auto seq = store.add_bundle(*file, bundle_meta(info, true, now_ms()));
  if (!seq) return Error{seq.error()};
  return load_bundle(store, *seq);
}

}  // namespace mxguard::scan
