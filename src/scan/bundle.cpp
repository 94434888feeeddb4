// Rule bundles: Hyperscan compilation per target, the bundle file format and
// its Ed25519 signature.
//
// File: u32 body length (LE), body, trailer. Body: "MXGB", u8 format version,
// u32 manifest length, manifest (JSON: name, created, rules), u32 database
// count, then per database u8 target, u16 header length, header, u32 length,
// hs_serialize_database() bytes. Trailer: "SIG1" + 32-byte public key +
// 64-byte signature over the body, or "NONE" for a factory bundle.
#include "mxguard/scan/bundle.hpp"

#include <hs.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace mxguard::scan {

namespace {

constexpr std::string_view kBodyMagic = "MXGB";
constexpr uint8_t kFormatVersion = 1;
constexpr std::string_view kSigMagic = "SIG1";
constexpr std::string_view kNoSigMagic = "NONE";
constexpr std::string_view kKeyPrefix = "mxguard-rules-key ";

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u16(std::string& out, uint16_t v) {
  out += static_cast<char>(v & 0xff);
  out += static_cast<char>(v >> 8);
}

// A bounds-checked reader over the body.
struct Reader {
  std::string_view s;
  size_t pos = 0;
  bool ok = true;
  std::string_view take(size_t n) {
    if (!ok || s.size() - pos < n) {
      ok = false;
      return {};
    }
    auto out = s.substr(pos, n);
    pos += n;
    return out;
  }
  uint32_t u32() {
    auto b = take(4);
    if (!ok) return 0;
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[i]);
    return v;
  }
  uint16_t u16() {
    auto b = take(2);
    if (!ok) return 0;
    return static_cast<uint16_t>(static_cast<uint8_t>(b[0]) | (static_cast<uint8_t>(b[1]) << 8));
  }
  uint8_t u8() {
    auto b = take(1);
    return ok ? static_cast<uint8_t>(b[0]) : 0;
  }
};

unsigned hs_flags(uint8_t flags) {
  unsigned f = HS_FLAG_SINGLEMATCH;
  if (flags & kCaseless) f |= HS_FLAG_CASELESS;
  if (flags & kDotAll) f |= HS_FLAG_DOTALL;
  if (flags & kMultiLine) f |= HS_FLAG_MULTILINE;
  if (flags & kUtf8) f |= HS_FLAG_UTF8 | HS_FLAG_UCP;
  return f;
}

std::string hex(const uint8_t* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

std::string base64(const uint8_t* p, size_t n) {
  std::string out(sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), p, n, sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool unbase64(std::string_view text, uint8_t* out, size_t n) {
  size_t len = 0;
  if (sodium_base642bin(out, n, text.data(), text.size(), " \t\r\n", &len, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0)
    return false;
  return len == n;
}

nlohmann::json rule_to_json(const Rule& r) {
  nlohmann::json j = {{"id", r.id}, {"description", r.description}, {"score", r.score},
                      {"file", r.file}, {"line", r.line}};
  switch (r.kind) {
    case RuleKind::kPattern:
      j["target"] = std::string(to_string(r.target));
      if (r.target == Target::kHeader) j["header"] = r.header;
      j["pattern"] = r.pattern;
      j["flags"] = r.flags;
      break;
    case RuleKind::kCombine:
      j["combine"] = r.expression;
      break;
    case RuleKind::kBuiltin:
      j["builtin"] = r.builtin;
      break;
  }
  return j;
}

// Rebuilds a rule from the manifest by printing it in the rule-file syntax and
// parsing that: one parser, one set of checks, for files and bundles alike.
Result<Rule> rule_from_json(const nlohmann::json& j) {
  try {
    std::string text = fmt::format("rule {}\ndescription {}\nscore {}\n", j.at("id").get<std::string>(),
                                   j.at("description").get<std::string>(), j.at("score").get<double>());
    if (j.contains("pattern")) {
      std::string target = j.at("target").get<std::string>();
      if (target == "header") target += ":" + j.at("header").get<std::string>();
      // The parser turns "\\/" back into "/" and keeps other escapes as they are.
      std::string pattern;
      for (char c : j.at("pattern").get<std::string>()) {
        if (c == '/') pattern += '\\';
        pattern += c;
      }
      uint8_t flags = j.at("flags").get<uint8_t>();
      std::string f;
      if (flags & kCaseless) f += 'i';
      if (flags & kDotAll) f += 's';
      if (flags & kMultiLine) f += 'm';
      if (flags & kUtf8) f += 'u';
      text += fmt::format("target {}\npattern /{}/{}\n", target, pattern, f);
    } else if (j.contains("combine")) {
      text += fmt::format("combine {}\n", j.at("combine").get<std::string>());
    } else {
      std::string words;
      for (const auto& w : j.at("builtin")) words += " " + w.get<std::string>();
      text += fmt::format("builtin{}\n", words);
    }
    auto parsed = parse_rules(text, j.value("file", std::string("bundle")));
    if (!parsed) return Error{parsed.error()};
    if (parsed->size() != 1) return Error{"bundle rule did not parse to one rule"};
    Rule r = std::move(parsed->front());
    r.line = j.value("line", 0u);
    return r;
  } catch (const nlohmann::json::exception& e) {
    return Error{fmt::format("bundle manifest: {}", e.what())};
  }
}

struct CompileGroup {
  Target target;
  std::string header;
  std::vector<uint32_t> rules;
};

// The pattern rules of a set grouped by what they scan: one database each.
std::vector<CompileGroup> pattern_groups(const RuleSet& rules) {
  std::vector<CompileGroup> groups;
  for (uint32_t i = 0; i < rules.rules.size(); ++i) {
    const Rule& r = rules.rules[i];
    if (r.kind != RuleKind::kPattern) continue;
    auto it = std::find_if(groups.begin(), groups.end(), [&](const CompileGroup& g) {
      return g.target == r.target && g.header == r.header;
    });
    if (it == groups.end()) {
      groups.push_back({r.target, r.header, {}});
      it = groups.end() - 1;
    }
    it->rules.push_back(i);
  }
  return groups;
}

std::shared_ptr<hs_database> owned_db(hs_database_t* db) {
  return std::shared_ptr<hs_database>(db, [](hs_database_t* d) { hs_free_database(d); });
}

// One group's patterns in one database; the pattern ids are rule indexes.
Result<std::shared_ptr<hs_database>> compile_group(const RuleSet& rules, const CompileGroup& g,
                                                   const hs_platform_info_t* target) {
  std::vector<const char*> exprs;
  std::vector<unsigned> flags, ids;
  for (uint32_t i : g.rules) {
    exprs.push_back(rules.rules[i].pattern.c_str());
    flags.push_back(hs_flags(rules.rules[i].flags));
    ids.push_back(i);
  }
  unsigned mode = is_stream_target(g.target) ? HS_MODE_STREAM : HS_MODE_BLOCK;
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()), mode, target,
                       &db, &err) != HS_SUCCESS) {
    std::string msg;
    if (err && err->expression >= 0 && static_cast<size_t>(err->expression) < g.rules.size()) {
      const Rule& r = rules.rules[g.rules[err->expression]];
      msg = fmt::format("{}:{}: rule {}: pattern does not compile: {}", r.file, r.line, r.id, err->message);
    } else {
      msg = fmt::format("target {}: hyperscan: {}", to_string(g.target), err ? err->message : "unknown error");
    }
    hs_free_compile_error(err);
    return Error{msg};
  }
  return owned_db(db);
}

}  // namespace

CompiledRules::~CompiledRules() = default;

void CompiledRules::add_db(Target target, std::string header, std::shared_ptr<hs_database> db, size_t patterns) {
  dbs_.push_back({target, std::move(header), db.get(), patterns});
  owned_.push_back(std::move(db));
}

const hs_database* CompiledRules::header_db(std::string_view lower_name) const {
  for (const auto& d : dbs_)
    if (d.target == Target::kHeader && d.header == lower_name) return d.db;
  return nullptr;
}

Status CompiledRules::build_indexes() {
  by_target_.fill(nullptr);
  for (const auto& d : dbs_)
    if (d.target != Target::kHeader) by_target_[static_cast<size_t>(d.target)] = d.db;
  builtins_.clear();
  for (uint32_t i = 0; i < rules_.rules.size(); ++i)
    if (rules_.rules[i].kind == RuleKind::kBuiltin) builtins_.push_back(i);
  return {};
}

Result<std::shared_ptr<const CompiledRules>> CompiledRules::compile(RuleSet rules, Platform platform) {
  // Portable: the lowest target Hyperscan has (SSSE3), tuned for no family.
  // Null: the compiling machine's own features and tuning.
  hs_platform_info_t portable{};
  portable.tune = HS_TUNE_FAMILY_GENERIC;
  portable.cpu_features = 0;
  const hs_platform_info_t* target = platform == Platform::kPortable ? &portable : nullptr;
  std::shared_ptr<CompiledRules> out(new CompiledRules());
  std::vector<CompileGroup> groups = pattern_groups(rules);
  for (const auto& g : groups) {
    auto db = compile_group(rules, g, target);
    if (!db) return Error{db.error()};
    out->add_db(g.target, g.header, std::move(*db), g.rules.size());
  }
  out->rules_ = std::move(rules);
  (void)out->build_indexes();
  return std::shared_ptr<const CompiledRules>(std::move(out));
}

std::string CompiledRules::serialize(std::string_view name, int64_t created_ms) const {
  nlohmann::json manifest = {{"name", name}, {"created_ms", created_ms}, {"hyperscan", hs_version()}};
  auto& arr = manifest["rules"] = nlohmann::json::array();
  for (const auto& r : rules_.rules) arr.push_back(rule_to_json(r));
  std::string m = manifest.dump();

  std::string body(kBodyMagic);
  body += static_cast<char>(kFormatVersion);
  put_u32(body, static_cast<uint32_t>(m.size()));
  body += m;
  put_u32(body, static_cast<uint32_t>(dbs_.size()));
  for (const auto& d : dbs_) {
    char* bytes = nullptr;
    size_t len = 0;
    if (hs_serialize_database(d.db, &bytes, &len) != HS_SUCCESS) throw std::runtime_error("hs_serialize_database");
    body += static_cast<char>(d.target);
    put_u16(body, static_cast<uint16_t>(d.header.size()));
    body += d.header;
    put_u32(body, static_cast<uint32_t>(len));
    body.append(bytes, len);
    free(bytes);
  }
  return body;
}

Result<std::shared_ptr<const CompiledRules>> CompiledRules::deserialize(std::string_view body) {
  Reader rd{body};
  if (rd.take(4) != kBodyMagic) return Error{"not a rule bundle (bad magic)"};
  if (rd.u8() != kFormatVersion) return Error{"rule bundle format version not supported"};
  uint32_t mlen = rd.u32();
  std::string_view mtext = rd.take(mlen);
  if (!rd.ok) return Error{"rule bundle truncated in the manifest"};
  nlohmann::json manifest = nlohmann::json::parse(mtext, nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object() || !manifest.contains("rules") ||
      !manifest["rules"].is_array())
    return Error{"rule bundle manifest is not valid"};
  std::vector<Rule> rules;
  for (const auto& j : manifest["rules"]) {
    auto r = rule_from_json(j);
    if (!r) return Error{r.error()};
    rules.push_back(std::move(*r));
  }
  auto linked = link_rules(std::move(rules));
  if (!linked) return Error{linked.error()};

  std::shared_ptr<CompiledRules> out(new CompiledRules());
  uint32_t count = rd.u32();
  bool recompile = false;
  for (uint32_t i = 0; rd.ok && i < count && !recompile; ++i) {
    uint8_t target = rd.u8();
    uint16_t hlen = rd.u16();
    std::string header(rd.take(hlen));
    uint32_t len = rd.u32();
    std::string_view bytes = rd.take(len);
    if (!rd.ok) break;
    if (target >= kTargetCount) return Error{"rule bundle names an unknown target"};
    hs_database_t* db = nullptr;
    hs_error_t e = hs_deserialize_database(bytes.data(), bytes.size(), &db);
    if (e == HS_DB_PLATFORM_ERROR || e == HS_DB_VERSION_ERROR) {
      recompile = true;  // built for another CPU or Hyperscan: the rules are here, compile them
      break;
    }
    if (e != HS_SUCCESS) return Error{"rule bundle database is corrupt"};
    out->add_db(static_cast<Target>(target), std::move(header), owned_db(db), 0);
  }
  if (!rd.ok) return Error{"rule bundle truncated in the databases"};
  // The databases must be exactly the ones the rules need, or matches would
  // be reported against the wrong rules.
  std::map<std::pair<uint8_t, std::string>, size_t> want;
  for (const auto& r : linked->rules)
    if (r.kind == RuleKind::kPattern) ++want[{static_cast<uint8_t>(r.target), r.header}];
  if (!recompile) {
    std::map<std::pair<uint8_t, std::string>, size_t> have;
    for (const auto& d : out->dbs_) have[{static_cast<uint8_t>(d.target), d.header}] = 1;
    if (have.size() != want.size() || out->dbs_.size() != want.size()) return Error{"rule bundle databases do not match its rules"};
    for (const auto& [k, n] : want) {
      if (!have.count(k)) return Error{"rule bundle databases do not match its rules"};
    }
    for (auto& d : out->dbs_) d.patterns = want[{static_cast<uint8_t>(d.target), d.header}];
  }
  if (recompile) return compile(std::move(*linked));
  out->rules_ = std::move(*linked);
  (void)out->build_indexes();
  return std::shared_ptr<const CompiledRules>(std::move(out));
}

Result<std::shared_ptr<const CompiledRules>> CompiledRules::with_layer(const std::shared_ptr<const CompiledRules>& base,
                                                                       std::vector<Rule> extra,
                                                                       const std::vector<ScoreOverride>& overrides) {
  if (extra.empty() && overrides.empty()) return base;
  // Which databases gain patterns: those are compiled again, with the base's
  // patterns of that target and the new ones.
  std::vector<std::pair<Target, std::string>> touched;
  for (const auto& r : extra)
    if (r.kind == RuleKind::kPattern &&
        std::find(touched.begin(), touched.end(), std::pair{r.target, r.header}) == touched.end())
      touched.emplace_back(r.target, r.header);
  std::vector<Rule> all = base->rules_.rules;
  for (auto& r : extra) all.push_back(std::move(r));
  auto linked = link_rules(std::move(all));
  if (!linked) return Error{linked.error()};
  if (auto st = apply_overrides(*linked, overrides); !st) return Error{st.error()};

  std::shared_ptr<CompiledRules> out(new CompiledRules());
  for (size_t i = 0; i < base->dbs_.size(); ++i) {
    const TargetDb& d = base->dbs_[i];
    if (std::find(touched.begin(), touched.end(), std::pair{d.target, d.header}) != touched.end()) continue;
    out->add_db(d.target, d.header, base->owned_[i], d.patterns);
  }
  for (const auto& g : pattern_groups(*linked)) {
    if (std::find(touched.begin(), touched.end(), std::pair{g.target, g.header}) == touched.end()) continue;
    auto db = compile_group(*linked, g, nullptr);
    if (!db) return Error{db.error()};
    out->add_db(g.target, g.header, std::move(*db), g.rules.size());
  }
  out->rules_ = std::move(*linked);
  (void)out->build_indexes();
  return std::shared_ptr<const CompiledRules>(std::move(out));
}

SigningKey generate_signing_key() {
  if (sodium_init() < 0) throw std::runtime_error("sodium_init");
  SigningKey k;
  crypto_sign_keypair(k.public_key.data(), k.secret.data());
  return k;
}

std::string encode_signing_key(const SigningKey& key) {
  return std::string(kKeyPrefix) + base64(key.secret.data(), key.secret.size()) + "\n";
}

Result<SigningKey> decode_signing_key(std::string_view text) {
  if (sodium_init() < 0) return Error{"libsodium did not initialise"};
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  if (!text.starts_with(kKeyPrefix)) return Error{"not an MxGuard rule signing key (mxguard rules keygen makes one)"};
  SigningKey k;
  if (!unbase64(text.substr(kKeyPrefix.size()), k.secret.data(), k.secret.size()))
    return Error{"the signing key is damaged (bad base64 or length)"};
  crypto_sign_ed25519_sk_to_pk(k.public_key.data(), k.secret.data());
  return k;
}

std::string encode_public_key(const std::array<uint8_t, 32>& key) { return base64(key.data(), key.size()); }

Result<std::array<uint8_t, 32>> decode_public_key(std::string_view text) {
  std::array<uint8_t, 32> k{};
  if (!unbase64(text, k.data(), k.size())) return Error{"not an Ed25519 public key (44 characters of base64)"};
  return k;
}

std::string sign_bundle(std::string_view body, const SigningKey& key) {
  if (sodium_init() < 0) throw std::runtime_error("sodium_init");
  std::string out;
  put_u32(out, static_cast<uint32_t>(body.size()));
  out += body;
  out += kSigMagic;
  out.append(reinterpret_cast<const char*>(key.public_key.data()), key.public_key.size());
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(body.data()), body.size(),
                       key.secret.data());
  out.append(reinterpret_cast<const char*>(sig), sizeof sig);
  return out;
}

namespace {

struct Split {
  std::string_view body;
  std::string_view trailer;
};

Result<Split> split_file(std::string_view file) {
  Reader rd{file};
  uint32_t len = rd.u32();
  std::string_view body = rd.take(len);
  if (!rd.ok) return Error{"rule bundle is truncated"};
  return Split{body, file.substr(rd.pos)};
}

void fill_info(std::string_view body, BundleInfo* info) {
  if (!info) return;
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(body.data()), body.size());
  info->digest = hex(digest, sizeof digest);
  Reader rd{body};
  rd.take(5);
  uint32_t mlen = rd.u32();
  auto m = nlohmann::json::parse(rd.take(mlen), nullptr, false);
  if (rd.ok && m.is_object()) {
    info->name = m.value("name", std::string());
    info->created_ms = m.value("created_ms", int64_t{0});
    if (m.contains("rules") && m["rules"].is_array()) info->rules = m["rules"].size();
  }
}

}  // namespace

Result<std::string_view> verify_bundle(std::string_view file, const std::vector<std::array<uint8_t, 32>>& trusted,
                                       BundleInfo* info) {
  if (sodium_init() < 0) return Error{"libsodium did not initialise"};
  auto split = split_file(file);
  if (!split) return Error{split.error()};
  std::string_view t = split->trailer;
  if (t == kNoSigMagic) return Error{"the bundle is not signed (build it with --key)"};
  if (t.size() != kSigMagic.size() + 32 + crypto_sign_BYTES || !t.starts_with(kSigMagic))
    return Error{"the bundle's signature block is damaged"};
  std::array<uint8_t, 32> pub{};
  std::memcpy(pub.data(), t.data() + 4, 32);
  if (std::find(trusted.begin(), trusted.end(), pub) == trusted.end())
    return Error{fmt::format("the bundle is signed by {}, which is not a trusted key (mxguard rules trust KEY)",
                             encode_public_key(pub))};
  const auto* sig = reinterpret_cast<const unsigned char*>(t.data() + 36);
  if (crypto_sign_verify_detached(sig, reinterpret_cast<const unsigned char*>(split->body.data()),
                                  split->body.size(), pub.data()) != 0)
    return Error{"the bundle's signature does not verify: it was changed after signing"};
  fill_info(split->body, info);
  if (info) info->signed_by = encode_public_key(pub);
  return split->body;
}

Result<std::string_view> bundle_body(std::string_view file, BundleInfo* info) {
  auto split = split_file(file);
  if (!split) return Error{split.error()};
  if (split->trailer != kNoSigMagic && !split->trailer.starts_with(kSigMagic))
    return Error{"the bundle's trailer is damaged"};
  fill_info(split->body, info);
  if (info && split->trailer.starts_with(kSigMagic) && split->trailer.size() >= 36)
    info->signed_by = encode_public_key([&] {
      std::array<uint8_t, 32> pub{};
      std::memcpy(pub.data(), split->trailer.data() + 4, 32);
      return pub;
    }());
  return split->body;
}

}  // namespace mxguard::scan
