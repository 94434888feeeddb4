// `mxguard rules ...`: build and sign bundles from rule files, trust signing
// keys, push a bundle (verified, then active), list and roll back.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>

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
  scan::Platform platform() const { return cpu == "native" ? scan::Platform::kHost : scan::Platform::kPortable; }
};

// The unsigned factory bundle, built with the binaries from the installed
// rules, so a new state dir loads it instead of compiling at start-up.
int run_build_factory(const BuildOptions& o) {
  size_t rules = 0;
  auto file = scan::build_bundle_file(o.dir, "factory", nullptr, &rules, o.platform());
  if (!file) return usage_error(file.error());
  if (auto st = replace_file(o.out, *file); !st) return runtime_error(st.error());
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
};

int run_keygen(const Context&, const KeygenOptions& o) {
  scan::SigningKey key = scan::generate_signing_key();
  if (auto st = write_new_file(o.out, scan::encode_signing_key(key), 0600); !st) return runtime_error(st.error());
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

int run_trust(const Context& ctx, const TrustOptions& o) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("rule signing keys are for operators"));
  if (!valid_key_name(o.name)) return usage_error(fmt::format("'{}' is not a key name (letters, digits, - _ . @)", o.name));
  auto key = scan::decode_public_key(o.key);
  if (!key) return usage_error(key.error());
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  std::string canonical = scan::encode_public_key(*key);
  auto added = (*store)->add_trusted_key(o.name, canonical);
  if (!added) return runtime_error(added.error());
  if (!*added) return fail(4, fmt::format("a trusted key named {} exists already", o.name));
  if (auto st = audit(**store, ctx.principal, "rules.trust", o.name, nullptr, {{"name", o.name}, {"key", canonical}});
      !st)
    return runtime_error(st.error());
  fmt::print("Trusted key {} ({}).\n", o.name, canonical);
  return kExitOk;
}

int run_untrust(const Context& ctx, const TrustOptions& o) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("rule signing keys are for operators"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto removed = (*store)->remove_trusted_key(o.name);
  if (!removed) return runtime_error(removed.error());
  if (!*removed) return usage_error(fmt::format("no trusted key named {}", o.name));
  if (auto st = audit(**store, ctx.principal, "rules.untrust", o.name, {{"name", o.name}}, nullptr); !st)
    return runtime_error(st.error());
  fmt::print("No longer trusting key {}.\n", o.name);
  return kExitOk;
}

int run_keys(const Context& ctx, const TrustOptions& o) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("rule signing keys are for operators"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto keys = (*store)->trusted_keys();
  if (!keys) return runtime_error(keys.error());
  if (o.json) {
    for (const auto& [name, key] : *keys) print_json_line({{"name", name}, {"key", key}});
    return kExitOk;
  }
  Table t({"NAME", "PUBLIC KEY"});
  for (const auto& [name, key] : *keys) t.add_row({name, key});
  if (t.rows()) t.print();
  fmt::print("{}\n", count_of(keys->size(), "trusted key", "trusted keys"));
  return kExitOk;
}

struct PushOptions {
  std::string file;
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
  // Everything is checked before anything is written: the signature, then
  // that the bundle loads and its databases work on this machine.
  scan::BundleInfo info;
  auto body = scan::verify_bundle(*data, *keys, &info);
  if (!body) return usage_error(fmt::format("bundle refused: {}", body.error()));
  auto compiled = scan::CompiledRules::deserialize(*body);
  if (!compiled) return usage_error(fmt::format("bundle refused: {}", compiled.error()));
  auto seq = (*store)->add_bundle(*data, scan::bundle_meta(info, false, now_ms()));
  if (!seq) return runtime_error(seq.error());
  if (auto st = audit(**store, ctx.principal, "rules.push", std::to_string(*seq), nullptr,
                      {{"bundle", *seq}, {"name", info.name}, {"digest", info.digest}, {"signed_by", info.signed_by}});
      !st)
    return runtime_error(st.error());
  fmt::print("Bundle {} ({}, {}, digest {}) is now active.\n", *seq, info.name,
             count_of(info.rules, "rule", "rules"), short_digest(info.digest));
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
  Table t({"BUNDLE", "ACTIVE", "NAME", "RULES", "STORED", "DIGEST", "SIGNED BY"});
  for (const auto& r : *records) {
    auto m = nlohmann::json::parse(r.meta, nullptr, false);
    if (!m.is_object()) m = nlohmann::json::object();
    std::string signer = m.value("factory", false) ? "factory" : m.value("signed_by", std::string());
    if (o.json) {
      print_json_line({{"bundle", r.seq},
                       {"active", r.active},
                       {"name", m.value("name", std::string())},
                       {"rules", m.value("rules", 0)},
                       {"stored", iso8601(m.value("stored_ms", int64_t{0}))},
                       {"digest", m.value("digest", std::string())},
                       {"signed_by", m.value("signed_by", std::string())},
                       {"factory", m.value("factory", false)}});
      continue;
    }
    t.add_row({std::to_string(r.seq), r.active ? "*" : "", m.value("name", std::string()),
               std::to_string(m.value("rules", 0)), iso8601(m.value("stored_ms", int64_t{0})),
               short_digest(m.value("digest", std::string())), signer});
  }
  if (o.json) return kExitOk;
  if (t.rows()) t.print();
  fmt::print("{}\n", count_of(records->size(), "bundle", "bundles"));
  return kExitOk;
}

int run_rollback(const Context& ctx) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("rule bundles are for operators"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto before = (*store)->active_bundle();
  if (!before) return runtime_error(before.error());
  // Check the bundle we would go back to still loads before switching.
  auto target = (*store)->rollback_target();
  if (!target) return runtime_error(target.error());
  if (!*target) return usage_error("there is no earlier bundle to roll back to");
  if (auto loaded = scan::load_bundle(**store, **target); !loaded)
    return runtime_error(fmt::format("cannot roll back: {}", loaded.error()));
  auto now = (*store)->rollback_bundle();
  if (!now) return runtime_error(now.error());
  if (!*now) return usage_error("there is no earlier bundle to roll back to");
  if (auto st = audit(**store, ctx.principal, "rules.rollback", std::to_string(**now), {{"bundle", **before}},
                      {{"bundle", **now}});
      !st)
    return runtime_error(st.error());
  fmt::print("Rolled back from bundle {} to bundle {}.\n", **before, **now);
  return kExitOk;
}

}  // namespace

void add_rules_commands(CLI::App& root, Commands& out) {
  CLI::App* group = root.add_subcommand("rules", "Rule bundles: build, sign, trust, push, list, roll back");
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
    out.push_back({cmd, [o](const Context& ctx) { return run_keygen(ctx, *o); }});
  }
  {
    auto o = std::make_shared<TrustOptions>();
    CLI::App* cmd = group->add_subcommand("trust", "Trust a public key to sign bundles");
    cmd->add_option("NAME", o->name, "A name for the key")->required();
    cmd->add_option("KEY", o->key, "The public key (base64, from rules keygen)")->required();
    out.push_back({cmd, [o](const Context& ctx) { return run_trust(ctx, *o); }});
  }
  {
    auto o = std::make_shared<TrustOptions>();
    CLI::App* cmd = group->add_subcommand("untrust", "Stop trusting a signing key");
    cmd->add_option("NAME", o->name, "The key's name")->required();
    out.push_back({cmd, [o](const Context& ctx) { return run_untrust(ctx, *o); }});
  }
  {
    auto o = std::make_shared<TrustOptions>();
    CLI::App* cmd = group->add_subcommand("keys", "List trusted signing keys");
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_keys(ctx, *o); }});
  }
  {
    auto o = std::make_shared<PushOptions>();
    CLI::App* cmd = group->add_subcommand("push", "Verify a signed bundle and make it active");
    cmd->add_option("FILE", o->file, "Bundle file, or - for standard input")->required();
    out.push_back({cmd, [o](const Context& ctx) { return run_push(ctx, *o); }});
  }
  {
    auto o = std::make_shared<ListOptions>();
    CLI::App* cmd = group->add_subcommand("list", "List stored bundles; * marks the active one");
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_list(ctx, *o); }});
  }
  {
    CLI::App* cmd = group->add_subcommand("rollback", "Make the bundle that was active before this one active again");
    out.push_back({cmd, [](const Context& ctx) { return run_rollback(ctx); }});
  }
}

}  // namespace mxguard::console
