// `mxguard rules ...`: build and sign bundles from rule files, trust signing
// keys, push a bundle (verified, then active), list, activate and roll back,
// and check or reload the local layer.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "console.hpp"
#include "mxguard/scan/active.hpp"
#include "mxguard/scan/bundle.hpp"
#include "output.hpp"

namespace mxguard::console {

namespace {

// Bundles are a few megabytes; anything much larger is not one.
constexpr size_t kMaxBundleBytes = size_t{256} << 20;

Result<std::string> read_file(const std::string& path, size_t max) {
  std::string data;
  if (path == "-") {
    data.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Error{fmt::format("{}: {}", path, std::strerror(errno))};
    data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) return Error{fmt::format("{}: read error", path)};
  }
  if (data.size() > max) return Error{fmt::format("{}: larger than {} bytes", path, max)};
  return data;
}

// Writes a file that must not exist yet, with `mode`, all or nothing.
Status write_new_file(const std::string& path, std::string_view data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Error{fmt::format("{}: {}", path, std::strerror(errno))};
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(path.c_str());
      return Error{fmt::format("{}: {}", path, err)};
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(path.c_str());
    return Error{fmt::format("{}: {}", path, std::strerror(errno))};
  }
  return {};
}

// Replaces `path` atomically (temp file + rename), so a failed build never
// leaves half a bundle where the old one was.
Status replace_file(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  if (auto st = write_new_file(tmp, data, 0644); !st) return st;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Error{fmt::format("{}: {}", path, std::strerror(errno))};
  }
  return {};
}

std::string short_digest(const std::string& d) { return d.substr(0, 12); }

struct BuildOptions {
  std::string dir, out, key, name;
  std::string cpu = "portable";
  bool factory = false;
  bool json = false;
  scan::Platform platform() const { return cpu == "native" ? scan::Platform::kHost : scan::Platform::kPortable; }
};

// The unsigned factory bundle, built with the binaries from the installed
// rules, so a new state dir loads it instead of compiling at start-up.
int run_build_factory(const BuildOptions& o) {
  size_t rules = 0;
  auto file = scan::build_bundle_file(o.dir, "factory", nullptr, &rules, o.platform());
  if (!file) return usage_error(file.error());
  if (auto st = replace_file(o.out, *file); !st) return runtime_error(st.error());
  if (o.json) {
    scan::BundleInfo info;
    (void)scan::bundle_body(*file, &info);
    print_json_line({{"file", o.out}, {"rules", rules}, {"bytes", file->size()}, {"digest", info.digest},
                     {"factory", true}});
    return kExitOk;
  }
  fmt::print("Built the factory bundle {} with {}.\n", o.out, count_of(rules, "rule", "rules"));
  return kExitOk;
}

int run_build(const Context&, const BuildOptions& o) {
  if (o.factory) return run_build_factory(o);
  if (o.key.empty()) return usage_error("--key is required (bundles are signed; --factory builds the unsigned factory one)");
  auto key_text = read_file(o.key, 4096);
  if (!key_text) return usage_error(key_text.error());
  auto key = scan::decode_signing_key(*key_text);
  if (!key) return usage_error(fmt::format("{}: {}", o.key, key.error()));
  size_t rules = 0;
  std::string name = o.name.empty() ? "rules" : o.name;
  auto file = scan::build_bundle_file(o.dir, name, &*key, &rules, o.platform());
  if (!file) return usage_error(file.error());
  if (auto st = replace_file(o.out, *file); !st) return runtime_error(st.error());
  scan::BundleInfo info;
  (void)scan::bundle_body(*file, &info);
  if (o.json) {
    print_json_line({{"file", o.out}, {"name", name}, {"rules", rules}, {"bytes", file->size()},
                     {"digest", info.digest}, {"signed_by", scan::encode_public_key(key->public_key)}});
    return kExitOk;
  }
  fmt::print("Built {} with {} ({} bytes), digest {}, signed by {}.\n", o.out, count_of(rules, "rule", "rules"),
             file->size(), short_digest(info.digest), scan::encode_public_key(key->public_key));
  return kExitOk;
}

struct CheckOptions {
  std::string dir;
  bool json = false;
};

int run_check(const Context&, const CheckOptions& o) {
  auto set = scan::load_rules_dir(o.dir);
  if (!set) return usage_error(set.error());
  std::map<std::string, size_t> per_kind;
  for (const auto& r : set->rules) {
    std::string k = r.kind == scan::RuleKind::kPattern   ? std::string(scan::to_string(r.target))
                     : r.kind == scan::RuleKind::kCombine ? "combine"
                                                          : "builtin";
    if (r.kind == scan::RuleKind::kPattern && r.target == scan::Target::kHeader) k = "header:" + r.header;
    ++per_kind[k];
  }
  size_t total = set->rules.size();
  auto compiled = scan::CompiledRules::compile(std::move(*set));
  if (!compiled) return usage_error(compiled.error());
  if (o.json) {
    nlohmann::ordered_json j = {{"rules", total}, {"databases", (*compiled)->databases().size()}};
    for (const auto& [k, n] : per_kind) j["by_kind"][k] = n;
    print_json_line(j);
  } else {
    fmt::print("{}: {} compiled into {} databases.\n", o.dir, count_of(total, "rule", "rules"),
               (*compiled)->databases().size());
    for (const auto& [k, n] : per_kind) fmt::print("  {:<34}{}\n", k, n);
  }
  return kExitOk;
}

struct KeygenOptions {
  std::string out;
  bool json = false;
};

int run_keygen(const Context&, const KeygenOptions& o) {
  scan::SigningKey key = scan::generate_signing_key();
  if (auto st = write_new_file(o.out, scan::encode_signing_key(key), 0600); !st) return runtime_error(st.error());
  if (o.json) {
    print_json_line({{"file", o.out}, {"public_key", scan::encode_public_key(key.public_key)}});
    return kExitOk;
  }
  fmt::print("Wrote the secret key to {} (keep it off the appliance).\nPublic key: {}\n", o.out,
             scan::encode_public_key(key.public_key));
  return kExitOk;
}

struct TrustOptions {
  std::string name, key;
  bool json = false;
};

bool valid_key_name(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '@')) return false;
  return true;
}

nlohmann::ordered_json key_json(const store::ConfigStore::TrustedKey& k) {
  return {{"name", k.name}, {"key", k.key}, {"added", k.added_ms ? iso8601(k.added_ms) : ""}};
}

// The trusted key's name for a base64 public key, or "" when none is trusted.
std::string key_name_for(const std::vector<store::ConfigStore::TrustedKey>& keys, std::string_view key) {
  for (const auto& k : keys)
    if (k.key == key) return k.name;
  return {};
}

int run_trust(const Context& ctx, const TrustOptions& o) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("rule signing keys are for operators"));
  if (!valid_key_name(o.name)) return usage_error(fmt::format("'{}' is not a key name (letters, digits, - _ . @)", o.name));
  auto key = scan::decode_public_key(o.key);
  if (!key) return usage_error(key.error());
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  std::string canonical = scan::encode_public_key(*key);
  auto before = (*store)->trusted_key_records();
  if (!before) return runtime_error(before.error());
  if (std::string other = key_name_for(*before, canonical); !other.empty() && other != o.name)
    return fail(4, fmt::format("that key is trusted already, as {}", other));
  auto added = (*store)->add_trusted_key(o.name, canonical);
  if (!added) return runtime_error(added.error());
  if (!*added) return fail(4, fmt::format("a trusted key named {} exists already", o.name));
  if (auto st = audit(**store, ctx.principal, "rules.trust", o.name, nullptr, {{"name", o.name}, {"key", canonical}});
      !st)
    return runtime_error(st.error());
  if (o.json) {
    auto keys = (*store)->trusted_key_records();
    if (!keys) return runtime_error(keys.error());
    for (const auto& k : *keys)
      if (k.name == o.name) print_json_line(key_json(k));
    return kExitOk;
  }
  fmt::print("Trusted key {} ({}).\n", o.name, canonical);
  return kExitOk;
}

int run_untrust(const Context& ctx, const TrustOptions& o) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("rule signing keys are for operators"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto keys = (*store)->trusted_key_records();
  if (!keys) return runtime_error(keys.error());
  auto it = std::find_if(keys->begin(), keys->end(), [&](const auto& k) { return k.name == o.name; });
  if (it == keys->end()) return usage_error(fmt::format("no trusted key named {}", o.name));
  auto removed = (*store)->remove_trusted_key(o.name);
  if (!removed) return runtime_error(removed.error());
  if (!*removed) return usage_error(fmt::format("no trusted key named {}", o.name));
  if (auto st = audit(**store, ctx.principal, "rules.untrust", o.name, {{"name", o.name}, {"key", it->key}}, nullptr);
      !st)
    return runtime_error(st.error());
  if (o.json) {
    auto j = key_json(*it);
    j["removed"] = true;
    print_json_line(j);
    return kExitOk;
  }
  fmt::print("No longer trusting key {}.\n", o.name);
  return kExitOk;
}

int run_keys(const Context& ctx, const TrustOptions& o) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("rule signing keys are for operators"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto keys = (*store)->trusted_key_records();
  if (!keys) return runtime_error(keys.error());
  if (o.json) {
    for (const auto& k : *keys) print_json_line(key_json(k));
    return kExitOk;
  }
  Table t({"NAME", "PUBLIC KEY", "ADDED"});
  for (const auto& k : *keys) t.add_row({k.name, k.key, k.added_ms ? iso8601(k.added_ms) : "-"});
  if (t.rows()) t.print();
  fmt::print("{}\n", count_of(keys->size(), "trusted key", "trusted keys"));
  return kExitOk;
}

nlohmann::json meta_of(const store::ConfigStore::BundleRecord& r) {
  auto m = nlohmann::json::parse(r.meta, nullptr, false);
  return m.is_object() ? m : nlohmann::json::object();
}

// Who signed a stored bundle, by trusted key name: the name recorded at the
// push, else the key's current name, else the key itself marked untrusted.
std::string signer_of(const nlohmann::json& m, const std::vector<store::ConfigStore::TrustedKey>& keys) {
  if (m.value("factory", false)) return "factory";
  std::string recorded = m.value("key", std::string());
  if (!recorded.empty()) return recorded;
  std::string pub = m.value("signed_by", std::string());
  if (std::string name = key_name_for(keys, pub); !name.empty()) return name;
  return pub.empty() ? "-" : pub.substr(0, 12) + "... (not trusted)";
}

nlohmann::ordered_json bundle_json(const store::ConfigStore::BundleRecord& r,
                                   const std::vector<store::ConfigStore::TrustedKey>& keys) {
  auto m = meta_of(r);
  bool factory = m.value("factory", false);
  nlohmann::ordered_json key = nullptr;
  if (!factory) key = signer_of(m, keys);
  return {{"bundle", r.seq},
          {"active", r.active},
          {"name", m.value("name", std::string())},
          {"rules", m.value("rules", 0)},
          {"stored", iso8601(m.value("stored_ms", int64_t{0}))},
          {"digest", m.value("digest", std::string())},
          {"signed_by", m.value("signed_by", std::string())},
          {"key", key},
          {"factory", factory}};
}

// The factory bundle in force: the newest factory one stored (what the state
// dir started with, or was given by an upgrade); pruning never drops it.
std::optional<uint64_t> factory_in_force(const std::vector<store::ConfigStore::BundleRecord>& records) {
  std::optional<uint64_t> out;
  for (const auto& r : records)
    if (meta_of(r).value("factory", false)) out = r.seq;
  return out;
}

// The local layer must apply to a bundle before that bundle is made active:
// an override of a rule the bundle no longer has is an error to fix first.
Status check_local_layer(const Context& ctx, const std::shared_ptr<const scan::CompiledRules>& rules,
                         scan::RuleFile* layer = nullptr) {
  auto layered = scan::with_local_layer(rules, ctx.config.rules.local_dir, layer);
  if (!layered) return Error{layered.error()};
  return {};
}

struct PushOptions {
  std::string file;
  bool json = false;
};

int run_push(const Context& ctx, const PushOptions& o) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("rule bundles are for operators"));
  auto data = read_file(o.file, kMaxBundleBytes);
  if (!data) return usage_error(data.error());
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto keys = scan::trusted_keys(**store);
  if (!keys) return runtime_error(keys.error());
  if (keys->empty()) return usage_error("no trusted signing keys yet (mxguard rules trust NAME KEY)");
  auto key_records = (*store)->trusted_key_records();
  if (!key_records) return runtime_error(key_records.error());
  // Everything is checked before anything is written: the signature, then
  // that the bundle loads and its databases work on this machine.
  scan::BundleInfo info;
  auto body = scan::verify_bundle(*data, *keys, &info);
  if (!body) return usage_error(fmt::format("bundle refused: {}", body.error()));
  auto records = (*store)->bundles();
  if (!records) return runtime_error(records.error());
  // The same body stored already: nothing to store, say which one it is.
  for (const auto& r : *records) {
    if (meta_of(r).value("digest", std::string()) != info.digest) continue;
    if (o.json) {
      auto j = bundle_json(r, *key_records);
      j["unchanged"] = true;
      print_json_line(j);
    } else if (r.active) {
      fmt::print("Bundle {} ({}, digest {}) is stored already and active: nothing changed.\n", r.seq, info.name,
                 short_digest(info.digest));
    } else {
      fmt::print("Bundle {} ({}, digest {}) is stored already but not active: nothing changed; "
                 "mxguard rules activate {} makes it active.\n",
                 r.seq, info.name, short_digest(info.digest), r.seq);
    }
    return kExitOk;
  }
  auto compiled = scan::CompiledRules::deserialize(*body);
  if (!compiled) return usage_error(fmt::format("bundle refused: {}", compiled.error()));
  if (auto st = check_local_layer(ctx, *compiled); !st)
    return usage_error(fmt::format("bundle refused: the local layer does not apply to it: {}", st.error()));
  auto meta = nlohmann::json::parse(scan::bundle_meta(info, false, now_ms()));
  meta["key"] = key_name_for(*key_records, info.signed_by);
  std::vector<uint64_t> protect;
  if (auto f = factory_in_force(*records)) protect.push_back(*f);
  auto stored = (*store)->store_bundle(*data, meta.dump(), ctx.config.rules.keep, protect);
  if (!stored) return runtime_error(stored.error());
  if (auto st = audit(**store, ctx.principal, "rules.push", std::to_string(stored->seq), nullptr,
                      {{"bundle", stored->seq},
                       {"name", info.name},
                       {"digest", info.digest},
                       {"signed_by", info.signed_by},
                       {"pruned", stored->pruned}});
      !st)
    return runtime_error(st.error());
  if (o.json) {
    auto now = (*store)->bundles();
    if (!now) return runtime_error(now.error());
    for (const auto& r : *now) {
      if (r.seq != stored->seq) continue;
      auto j = bundle_json(r, *key_records);
      j["pruned"] = stored->pruned;
      print_json_line(j);
    }
    return kExitOk;
  }
  fmt::print("Bundle {} ({}, {}, digest {}, signed by {}) is now active.\n", stored->seq, info.name,
             count_of(info.rules, "rule", "rules"), short_digest(info.digest), meta["key"].get<std::string>());
  if (!stored->pruned.empty()) {
    std::string list;
    for (uint64_t p : stored->pruned) list += (list.empty() ? "" : ", ") + std::to_string(p);
    fmt::print("Pruned {} beyond rules.keep = {}: {}.\n", count_of(stored->pruned.size(), "old bundle", "old bundles"),
               ctx.config.rules.keep, list);
  }
  return kExitOk;
}

struct ListOptions {
  bool json = false;
};

int run_list(const Context& ctx, const ListOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto records = (*store)->bundles();
  if (!records) return runtime_error(records.error());
  auto keys = (*store)->trusted_key_records();
  if (!keys) return runtime_error(keys.error());
  Table t({"BUNDLE", "ACTIVE", "NAME", "RULES", "STORED", "DIGEST", "SIGNED BY"});
  for (const auto& r : *records) {
    if (o.json) {
      print_json_line(bundle_json(r, *keys));
      continue;
    }
    auto m = meta_of(r);
    t.add_row({std::to_string(r.seq), r.active ? "*" : "", m.value("name", std::string()),
               std::to_string(m.value("rules", 0)), iso8601(m.value("stored_ms", int64_t{0})),
               short_digest(m.value("digest", std::string())), signer_of(m, *keys)});
  }
  if (o.json) return kExitOk;
  if (t.rows()) t.print();
  fmt::print("{}\n", count_of(records->size(), "bundle", "bundles"));
  return kExitOk;
}

struct SwitchOptions {
  uint64_t bundle = 0;
  bool json = false;
};

// After a rollback or an activation: the bundle now active, as written.
int print_switched(store::ConfigStore& store, const SwitchOptions& o, uint64_t from, uint64_t to,
                   std::string_view verb) {
  auto records = store.bundles();
  if (!records) return runtime_error(records.error());
  auto keys = store.trusted_key_records();
  if (!keys) return runtime_error(keys.error());
  for (const auto& r : *records) {
    if (r.seq != to) continue;
    if (o.json) {
      auto j = bundle_json(r, *keys);
      j["from"] = from;
      print_json_line(j);
    } else {
      auto m = meta_of(r);
      fmt::print("{} from bundle {} to bundle {} ({}, digest {}).\n", verb, from, to, m.value("name", std::string()),
                 short_digest(m.value("digest", std::string())));
    }
  }
  return kExitOk;
}

int run_rollback(const Context& ctx, const SwitchOptions& o) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("rule bundles are for operators"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto before = (*store)->active_bundle();
  if (!before) return runtime_error(before.error());
  // Check the bundle we would go back to still loads before switching.
  auto target = (*store)->rollback_target();
  if (!target) return runtime_error(target.error());
  if (!*target) return usage_error("there is no earlier bundle to roll back to");
  auto loaded = scan::load_bundle(**store, **target);
  if (!loaded) return runtime_error(fmt::format("cannot roll back: {}", loaded.error()));
  if (auto st = check_local_layer(ctx, loaded->rules); !st)
    return usage_error(fmt::format("cannot roll back: the local layer does not apply to bundle {}: {}", **target,
                                   st.error()));
  auto now = (*store)->rollback_bundle();
  if (!now) return runtime_error(now.error());
  if (!*now) return usage_error("there is no earlier bundle to roll back to");
  if (auto st = audit(**store, ctx.principal, "rules.rollback", std::to_string(**now), {{"bundle", **before}},
                      {{"bundle", **now}});
      !st)
    return runtime_error(st.error());
  return print_switched(**store, o, **before, **now, "Rolled back");
}

int run_activate(const Context& ctx, const SwitchOptions& o) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("rule bundles are for operators"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto records = (*store)->bundles();
  if (!records) return runtime_error(records.error());
  auto it = std::find_if(records->begin(), records->end(), [&](const auto& r) { return r.seq == o.bundle; });
  if (it == records->end()) {
    std::string stored;
    for (const auto& r : *records) stored += (stored.empty() ? "" : ", ") + std::to_string(r.seq);
    return usage_error(fmt::format("there is no stored bundle {} (stored: {}; see mxguard rules list)", o.bundle,
                                   stored.empty() ? "none" : stored));
  }
  auto before = (*store)->active_bundle();
  if (!before) return runtime_error(before.error());
  uint64_t from = before->value_or(0);
  if (it->active) {
    if (o.json) {
      auto keys = (*store)->trusted_key_records();
      if (!keys) return runtime_error(keys.error());
      auto j = bundle_json(*it, *keys);
      j["unchanged"] = true;
      print_json_line(j);
    } else {
      fmt::print("Bundle {} is active already: nothing changed.\n", o.bundle);
    }
    return kExitOk;
  }
  // It must load (a signed one against the keys trusted now) and take the
  // local layer before it is made active.
  auto loaded = scan::load_bundle(**store, o.bundle);
  if (!loaded) return runtime_error(fmt::format("cannot activate: {}", loaded.error()));
  if (auto st = check_local_layer(ctx, loaded->rules); !st)
    return usage_error(fmt::format("cannot activate: the local layer does not apply to bundle {}: {}", o.bundle,
                                   st.error()));
  auto done = (*store)->activate_bundle(o.bundle);
  if (!done) return runtime_error(done.error());
  if (!*done) return usage_error(fmt::format("there is no stored bundle {}", o.bundle));
  if (auto st = audit(**store, ctx.principal, "rules.activate", std::to_string(o.bundle), {{"bundle", from}},
                      {{"bundle", o.bundle}});
      !st)
    return runtime_error(st.error());
  return print_switched(**store, o, from, o.bundle, "Activated: switched");
}

struct LocalOptions {
  bool json = false;
};

// The local layer read and put on the active bundle; prints what it holds.
// `reload` then tells the engine to read it again.
int run_local(const Context& ctx, const LocalOptions& o, bool reload) {
  if (reload && !is_operator(ctx.principal))
    return fail(kExitNotPermitted, not_permitted("local rules are for operators"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto active = scan::load_active(**store, scan::rules_dir_for(ctx.config.scan));
  if (!active) return runtime_error(active.error());
  scan::RuleFile layer;
  if (auto st = check_local_layer(ctx, active->rules, &layer); !st) return usage_error(st.error());
  uint64_t generation = 0;
  if (reload) {
    auto gen = (*store)->bump_local_rules_generation();
    if (!gen) return runtime_error(gen.error());
    generation = *gen;
    if (auto st = audit(**store, ctx.principal, "rules.local_reload", ctx.config.rules.local_dir, nullptr,
                        {{"generation", generation},
                         {"rules", layer.rules.size()},
                         {"overrides", layer.overrides.size()}});
        !st)
      return runtime_error(st.error());
  }
  // The bundle's own score of each overridden rule, to show the change.
  std::map<std::string, double, std::less<>> base_score;
  for (const auto& r : active->rules->rules().rules) base_score[r.id] = r.score;
  if (o.json) {
    nlohmann::ordered_json rules = nlohmann::ordered_json::array(), overrides = nlohmann::ordered_json::array();
    for (const auto& r : layer.rules)
      rules.push_back({{"rule", r.id}, {"score", r.score}, {"file", r.file}, {"line", r.line}});
    for (const auto& ov : layer.overrides) {
      auto it = base_score.find(ov.rule);
      nlohmann::ordered_json was = nullptr;
      if (it != base_score.end()) was = it->second;
      overrides.push_back({{"rule", ov.rule}, {"score", ov.score}, {"bundle_score", was}, {"file", ov.file},
                           {"line", ov.line}});
    }
    nlohmann::ordered_json j = {{"local_dir", ctx.config.rules.local_dir}, {"bundle", active->seq},
                                {"rules", rules}, {"overrides", overrides}};
    if (reload) j["generation"] = generation;
    print_json_line(j);
    return kExitOk;
  }
  fmt::print("Local rules in {}: {} and {} on bundle {} ({}).\n", ctx.config.rules.local_dir,
             count_of(layer.rules.size(), "rule", "rules"),
             count_of(layer.overrides.size(), "score override", "score overrides"), active->seq, active->info.name);
  for (const auto& r : layer.rules) fmt::print("  rule  {:<32} {:+g}  {}:{}\n", r.id, r.score, r.file, r.line);
  for (const auto& ov : layer.overrides) {
    auto it = base_score.find(ov.rule);
    std::string was = it == base_score.end() ? "local" : fmt::format("{:+g}", it->second);
    fmt::print("  score {:<32} {} -> {:+g}  {}:{}\n", ov.rule, was, ov.score, ov.file, ov.line);
  }
  if (reload)
    fmt::print("The engine reads them again within about a second (rules.local_reloaded in its log).\n");
  return kExitOk;
}

}  // namespace

void add_rules_commands(CLI::App& root, Commands& out) {
  CLI::App* group = root.add_subcommand("rules", "Rule bundles: build, sign, trust, push, list, activate, roll back");
  {
    auto o = std::make_shared<BuildOptions>();
    CLI::App* cmd = group->add_subcommand("build", "Compile a rules directory into a signed bundle");
    cmd->add_option("DIR", o->dir, "Directory of *.rules files")->required();
    cmd->add_option("-o,--output", o->out, "Bundle file to write")->required();
    CLI::Option* key = cmd->add_option("--key", o->key, "Secret signing key file (mxguard rules keygen)");
    cmd->add_flag("--factory", o->factory, "Build the unsigned factory bundle (done by the build)")->excludes(key);
    cmd->add_option("--name", o->name, "Name shown by rules list (default: rules)");
    cmd->add_option("--cpu", o->cpu,
                    "CPU to compile for: portable (any x86-64, the default) or native (this machine's features; "
                    "an appliance without them compiles the bundle again at each load)")
        ->check(CLI::IsMember({"portable", "native"}));
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_build(ctx, *o); }});
  }
  {
    auto o = std::make_shared<CheckOptions>();
    CLI::App* cmd = group->add_subcommand("check", "Parse and compile a rules directory without writing anything");
    cmd->add_option("DIR", o->dir, "Directory of *.rules files")->required();
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_check(ctx, *o); }});
  }
  {
    auto o = std::make_shared<KeygenOptions>();
    CLI::App* cmd = group->add_subcommand("keygen", "Create an Ed25519 signing key (prints the public key)");
    cmd->add_option("-o,--output", o->out, "Secret key file to create (mode 0600)")->required();
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_keygen(ctx, *o); }});
  }
  {
    auto o = std::make_shared<TrustOptions>();
    CLI::App* cmd = group->add_subcommand("trust", "Trust a public key to sign bundles");
    cmd->add_option("NAME", o->name, "A name for the key")->required();
    cmd->add_option("KEY", o->key, "The public key (base64, from rules keygen)")->required();
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_trust(ctx, *o); }});
  }
  {
    auto o = std::make_shared<TrustOptions>();
    CLI::App* cmd = group->add_subcommand("untrust", "Stop trusting a signing key");
    cmd->add_option("NAME", o->name, "The key's name")->required();
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_untrust(ctx, *o); }});
  }
  {
    auto o = std::make_shared<TrustOptions>();
    CLI::App* cmd = group->add_subcommand("keys", "List trusted signing keys: name, public key, when added");
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_keys(ctx, *o); }});
  }
  {
    auto o = std::make_shared<PushOptions>();
    CLI::App* cmd = group->add_subcommand(
        "push", "Verify a signed bundle and make it active (one stored already is not stored twice); "
                "bundles beyond rules.keep are pruned");
    cmd->add_option("FILE", o->file, "Bundle file, or - for standard input")->required();
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_push(ctx, *o); }});
  }
  {
    auto o = std::make_shared<ListOptions>();
    CLI::App* cmd = group->add_subcommand("list", "List stored bundles; * marks the active one");
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_list(ctx, *o); }});
  }
  {
    auto o = std::make_shared<SwitchOptions>();
    CLI::App* cmd = group->add_subcommand("rollback", "Make the bundle that was active before this one active again");
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_rollback(ctx, *o); }});
  }
  {
    auto o = std::make_shared<SwitchOptions>();
    CLI::App* cmd = group->add_subcommand("activate", "Make stored bundle N active (forward again after a rollback)");
    cmd->add_option("N", o->bundle, "The bundle number (mxguard rules list)")->required();
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_activate(ctx, *o); }});
  }
  {
    CLI::App* local = group->add_subcommand("local", "The local layer: rules.local_dir's *.rules and score overrides");
    auto o = std::make_shared<LocalOptions>();
    CLI::App* check = local->add_subcommand("check", "Read the local rules and put them on the active bundle; "
                                                     "print what they change, write nothing");
    add_json_flag(*check, o->json);
    out.push_back({check, [o](const Context& ctx) { return run_local(ctx, *o, false); }});
    auto r = std::make_shared<LocalOptions>();
    CLI::App* reload = local->add_subcommand("reload", "Check the local rules, then have the engine read them again");
    add_json_flag(*reload, r->json);
    out.push_back({reload, [r](const Context& ctx) { return run_local(ctx, *r, true); }});
  }
}

}  // namespace mxguard::console
