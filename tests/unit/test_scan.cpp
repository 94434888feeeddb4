// Unit tests for the scan module: the rule-file parser and linker, bundles
// (compile, serialise, sign, verify), verdicts, header hygiene, archive
// members seen by the scanner, and the sender checks' report and scores.
#include <doctest.h>
#include <hs.h>

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "mxguard/scan/auth_results.hpp"
#include "mxguard/scan/bundle.hpp"
#include "mxguard/scan/header_hygiene.hpp"
#include "mxguard/scan/rules.hpp"
#include "mxguard/scan/scanner.hpp"
#include "mxguard/scan/verdict.hpp"

using namespace mxguard;
using namespace mxguard::scan;

namespace {

const char* kGood = R"(# comment
rule SUBJ_MONEY
  description Subject talks money
  score       1.5
  target      subject
  pattern     /\$\d+ (million|thousand)/i

rule HDR_MAILER
  description Bulk mailer
  score 0.5
  target header:X-Mailer
  pattern /bulk\/mailer/

rule SPF_FAIL
  description SPF fails
  score 2
  builtin spf fail

rule COMBO
  description money and spf
  score 3
  combine SUBJ_MONEY & (SPF_FAIL | !HDR_MAILER)

rule COMBO2
  description uses a combination
  score -1
  combine COMBO & HDR_MAILER
)";

std::string parse_error(std::string_view text) {
  auto r = parse_rules(text, "t.rules");
  if (r) {
    auto l = link_rules(std::move(*r));
    if (l) return "";
    return l.error();
  }
  return r.error();
}

}  // namespace

TEST_CASE("rules: a good file parses and links") {
  auto parsed = parse_rules(kGood, "t.rules");
  REQUIRE(parsed.ok());
  REQUIRE(parsed->size() == 5);
  const Rule& r0 = (*parsed)[0];
  CHECK(r0.id == "SUBJ_MONEY");
  CHECK(r0.description == "Subject talks money");
  CHECK(r0.score == doctest::Approx(1.5));
  CHECK(r0.target == Target::kSubject);
  CHECK(r0.pattern == R"(\$\d+ (million|thousand))");
  CHECK(r0.flags == kCaseless);
  CHECK(r0.line == 2);
  const Rule& r1 = (*parsed)[1];
  CHECK(r1.target == Target::kHeader);
  CHECK(r1.header == "x-mailer");
  CHECK(r1.pattern == "bulk/mailer");  // "\/" is a slash
  CHECK((*parsed)[2].builtin == std::vector<std::string>{"spf", "fail"});
  auto set = link_rules(std::move(*parsed));
  REQUIRE(set.ok());
  // COMBO comes before COMBO2, which uses it.
  REQUIRE(set->combine_order.size() == 2);
  CHECK(set->combine_order[0] == 3);
  CHECK(set->combine_order[1] == 4);
  std::vector<bool> fired = {true, false, false, false, false};
  CHECK(evaluate(set->programs[3], fired));  // SUBJ_MONEY & !HDR_MAILER
  fired = {true, true, false, false, false};
  CHECK_FALSE(evaluate(set->programs[3], fired));
  fired = {true, true, true, false, false};
  CHECK(evaluate(set->programs[3], fired));
}

TEST_CASE("rules: errors name the file, the line and the rule") {
  CHECK(parse_error("rule A\n description x\n score 1\n target text\n pattern /a/q\n") ==
        "t.rules:5: rule A: unknown pattern flag 'q' (flags are i, s, m, u)");
  CHECK(parse_error("rule A\n description x\n score 1\n target body\n pattern /a/\n") ==
        "t.rules:4: rule A: unknown target 'body'");
  CHECK(parse_error("rule A\n description x\n score 1\n target text\n") ==
        "t.rules:1: rule A: needs one of pattern, combine or builtin");
  CHECK(parse_error("rule A\n score 1\n target text\n pattern /a/\n") == "t.rules:1: rule A: no description");
  CHECK(parse_error("rule A\n description x\n target text\n pattern /a/\n") == "t.rules:1: rule A: no score");
  CHECK(parse_error("rule A\n description x\n score 1000\n") ==
        "t.rules:3: rule A: score '1000' is not a number in [-100, 100]");
  CHECK(parse_error("rule a_lower\n") ==
        "t.rules:1: 'a_lower' is not a rule id (A-Z, 0-9, _; starting with a letter; at most 64)");
  CHECK(parse_error("description x\n") == "t.rules:1: 'description' outside a rule (a rule starts with 'rule ID')");
  CHECK(parse_error("rule A\n description x\n score 1\n pattern /a/\n") ==
        "t.rules:1: rule A: a pattern rule needs a target");
  CHECK(parse_error("rule A\n description x\n score 1\n target text\n pattern /abc\n") ==
        "t.rules:5: rule A: the pattern has no closing slash");
  CHECK(parse_error("rule A\n description x\n score 1\n builtin spf maybe\n") ==
        "t.rules:4: rule A: builtin spf: unknown result 'maybe'");
  CHECK(parse_error("rule A\n description x\n score 1\n builtin bayes 0.9 0.5\n") ==
        "t.rules:4: rule A: builtin bayes: LOW and HIGH must be numbers with 0 <= LOW < HIGH <= 1");
  CHECK(parse_error("rule A\n description x\n score 1\n builtin nosuch\n") ==
        "t.rules:4: rule A: unknown builtin 'nosuch'");
  CHECK(parse_error("rule C\n description c\n score 1\n builtin spf pass\n"
                    "rule A\n description x\n score 1\n combine C & \n") ==
        "t.rules:5: rule A: combination ends where a rule id was expected");
  CHECK(parse_error("rule A\n description x\n score 1\n combine NOPE\n") ==
        "t.rules:1: rule A: combination uses unknown rule NOPE");
  CHECK(parse_error("rule A\n description x\n score 1\n combine B\nrule B\n description y\n score 1\n combine A\n") ==
        "t.rules:5: rule B: combination cycle through A");
  CHECK(parse_error("rule A\n description x\n score 1\n builtin spf fail\nrule A\n description y\n score 1\n"
                    " builtin spf pass\n") == "t.rules:5: rule A: id already used at t.rules:1");
  CHECK(parse_error("rule A\n description x\n score 1\n target raw\n pattern /a/u\n") ==
        "t.rules:1: rule A: flag u is not allowed on raw or attachment-content (they are not UTF-8)");
  CHECK(parse_error("rule A\n description x\n description y\n") == "t.rules:3: rule A: description given twice");
  CHECK(parse_error("rule A\n description x\n score 1\n combine (A\n").find("missing ')'") != std::string::npos);
}

TEST_CASE("bundle: compile errors name the rule") {
  auto parsed = parse_rules("rule BAD\n description x\n score 1\n target text\n pattern /(a/\n", "b.rules");
  REQUIRE(parsed.ok());
  auto set = link_rules(std::move(*parsed));
  REQUIRE(set.ok());
  auto compiled = CompiledRules::compile(std::move(*set));
  REQUIRE_FALSE(compiled.ok());
  CHECK(compiled.error().starts_with("b.rules:1: rule BAD: pattern does not compile: "));

  parsed = parse_rules("rule EMPTY\n description x\n score 1\n target text\n pattern /a*/\n", "b.rules");
  REQUIRE(parsed.ok());
  set = link_rules(std::move(*parsed));
  REQUIRE(set.ok());
  compiled = CompiledRules::compile(std::move(*set));
  REQUIRE_FALSE(compiled.ok());
  CHECK(compiled.error().starts_with("b.rules:1: rule EMPTY: pattern does not compile: "));
}

namespace {

// What Hyperscan says a database was compiled for ("... Features: AVX2 Mode: BLOCK").
std::string db_features(const hs_database* db) {
  char* info = nullptr;
  REQUIRE(hs_database_info(db, &info) == HS_SUCCESS);
  std::string s(info);
  free(info);
  auto at = s.find("Features:");
  REQUIRE(at != std::string::npos);
  return s.substr(at, s.find("Mode:") - at);
}

}  // namespace

TEST_CASE("bundle: portable databases use no AVX2 or AVX-512; host ones use what this CPU has") {
  auto compile = [](Platform p) {
    auto set = link_rules(*parse_rules(kGood, "t.rules"));
    REQUIRE(set.ok());
    auto c = CompiledRules::compile(std::move(*set), p);
    REQUIRE(c.ok());
    return *c;
  };
  auto portable = compile(Platform::kPortable);
  for (const auto& d : portable->databases()) {
    CHECK(db_features(d.db).find("AVX") == std::string::npos);
  }
  auto host = compile(Platform::kHost);
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) {
    // "AVX2", "AVX512" or "AVX512VBMI": the most this CPU has.
    for (const auto& d : host->databases()) CHECK(db_features(d.db).find("AVX") != std::string::npos);
  }
  // A portable body loads back as it is (no compile) and finds what the rules find.
  auto loaded = CompiledRules::deserialize(portable->serialize("p", 1));
  REQUIRE(loaded.ok());
  REQUIRE((*loaded)->databases().size() == portable->databases().size());
  for (const auto& d : (*loaded)->databases()) CHECK(db_features(d.db).find("AVX") == std::string::npos);
}

TEST_CASE("bundle: serialise, sign, verify and load back") {
  auto set = link_rules(*parse_rules(kGood, "t.rules"));
  REQUIRE(set.ok());
  auto compiled = CompiledRules::compile(std::move(*set));
  REQUIRE(compiled.ok());
  CHECK((*compiled)->databases().size() == 2);  // subject, header:x-mailer
  CHECK((*compiled)->db(Target::kSubject) != nullptr);
  CHECK((*compiled)->db(Target::kText) == nullptr);
  CHECK((*compiled)->header_db("x-mailer") != nullptr);
  CHECK((*compiled)->builtins() == std::vector<uint32_t>{2});

  std::string body = (*compiled)->serialize("test", 1234);
  SigningKey key = generate_signing_key();
  std::string file = sign_bundle(body, key);

  BundleInfo info;
  auto verified = verify_bundle(file, {key.public_key}, &info);
  REQUIRE(verified.ok());
  CHECK(*verified == body);
  CHECK(info.name == "test");
  CHECK(info.created_ms == 1234);
  CHECK(info.rules == 5);
  CHECK(info.digest.size() == 64);
  CHECK(info.signed_by == encode_public_key(key.public_key));

  auto loaded = CompiledRules::deserialize(*verified);
  REQUIRE(loaded.ok());
  REQUIRE((*loaded)->rules().rules.size() == 5);
  CHECK((*loaded)->rules().rules[1].pattern == "bulk/mailer");
  CHECK((*loaded)->rules().rules[0].pattern == R"(\$\d+ (million|thousand))");
  CHECK((*loaded)->rules().rules[0].line == 2);
  CHECK((*loaded)->header_db("x-mailer") != nullptr);

  // Another key, a changed byte, a truncated file and no signature are refused.
  SigningKey other = generate_signing_key();
  auto wrong = verify_bundle(file, {other.public_key});
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().find("not a trusted key") != std::string::npos);
  std::string tampered = file;
  tampered[100] ^= 1;
  auto bad = verify_bundle(tampered, {key.public_key});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().find("does not verify") != std::string::npos);
  CHECK_FALSE(verify_bundle(file.substr(0, 50), {key.public_key}).ok());
  std::string unsigned_file = file.substr(0, 4 + body.size()) + "NONE";
  auto uns = verify_bundle(unsigned_file, {key.public_key});
  REQUIRE_FALSE(uns.ok());
  CHECK(uns.error().find("not signed") != std::string::npos);
  CHECK(bundle_body(unsigned_file).ok());
}

TEST_CASE("bundle: keys round-trip and damaged keys are refused") {
  SigningKey key = generate_signing_key();
  auto back = decode_signing_key(encode_signing_key(key));
  REQUIRE(back.ok());
  CHECK(back->public_key == key.public_key);
  CHECK(back->secret == key.secret);
  CHECK_FALSE(decode_signing_key("mxguard-rules-key AAAA").ok());
  CHECK_FALSE(decode_signing_key("something else").ok());
  auto pub = decode_public_key(encode_public_key(key.public_key));
  REQUIRE(pub.ok());
  CHECK(*pub == key.public_key);
  CHECK_FALSE(decode_public_key("abc").ok());
}

TEST_CASE("verdict: thresholds and several recipients") {
  Thresholds t{15, 6, 4};
  CHECK(action_for(3.9, t) == Action::kDeliver);
  CHECK(action_for(4, t) == Action::kGreylist);
  CHECK(action_for(6, t) == Action::kQuarantine);
  CHECK(action_for(15, t) == Action::kReject);
  CHECK(action_for(-5, t) == Action::kDeliver);

  auto v = combine({{Action::kReject, false}, {Action::kReject, false}});
  CHECK(v.reply == Action::kReject);
  v = combine({{Action::kReject, false}, {Action::kReject, true}});
  CHECK(v.reply == Action::kQuarantine);  // accepted: the allow-listed recipient gets it
  CHECK(v.per_recipient == std::vector<Action>{Action::kQuarantine, Action::kDeliver});
  v = combine({{Action::kGreylist, false}, {Action::kReject, false}});
  CHECK(v.reply == Action::kGreylist);
  v = combine({{Action::kQuarantine, false}, {Action::kDeliver, false}});
  CHECK(v.reply == Action::kQuarantine);
  CHECK(v.per_recipient == std::vector<Action>{Action::kQuarantine, Action::kDeliver});
  v = combine({{Action::kGreylist, false}, {Action::kDeliver, false}});
  CHECK(v.reply == Action::kDeliver);
  CHECK(v.per_recipient == std::vector<Action>{Action::kDeliver, Action::kDeliver});
  CHECK(action_from_string("quarantine") == Action::kQuarantine);
  CHECK_FALSE(action_from_string("drop").has_value());
}

// ---- header hygiene ---------------------------------------------------------

namespace {
// The message without the claimed fields.
std::string without_claimed(std::string_view msg, std::string_view host) {
  std::string out(msg);
  auto fields = claimed_header_fields(msg, host);
  for (auto it = fields.rbegin(); it != fields.rend(); ++it) out.erase(it->begin, it->end - it->begin);
  return out;
}
}  // namespace

TEST_CASE("header hygiene: authserv-id") {
  CHECK(authserv_id(" mx.example.net; spf=pass") == "mx.example.net");
  CHECK(authserv_id("mx.example.net 1; none") == "mx.example.net");
  CHECK(authserv_id(" (a (nested) comment)\r\n\t mx.example.net;") == "mx.example.net");
  CHECK(authserv_id(" \"mx.example.net\"; dkim=pass") == "mx.example.net");
  CHECK(authserv_id("mx.example.net(comment); x") == "mx.example.net");
  CHECK(authserv_id(" (unclosed") == "");
  CHECK(authserv_id("") == "");
  CHECK(authserv_id(" \"open") == "open");
}

TEST_CASE("header hygiene: fields that claim to be ours are found, others kept") {
  const std::string msg =
      "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
      "Authentication-Results: MX.Example.NET.; dkim=pass header.d=bank.example\r\n"
      "Authentication-Results: other.example; spf=fail\r\n"
      "authentication-results:\r\n"
      "\t(forged)\r\n"
      "  mx.example.net; dmarc=pass\r\n"
      "X-MxGuard-Score: -50.00 deliver\r\n"
      "x-mxguard-anything:   folded\r\n"
      " continued\r\n"
      "X-MxGuardian: not ours\r\n"
      "Subject: Authentication-Results: mx.example.net; spf=pass\r\n"
      "\r\n"
      "Authentication-Results: mx.example.net; in the body\r\n"
      "X-MxGuard-Score: in the body\r\n";
  const std::string want =
      "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
      "Authentication-Results: other.example; spf=fail\r\n"
      "X-MxGuardian: not ours\r\n"
      "Subject: Authentication-Results: mx.example.net; spf=pass\r\n"
      "\r\n"
      "Authentication-Results: mx.example.net; in the body\r\n"
      "X-MxGuard-Score: in the body\r\n";
  CHECK(claimed_header_fields(msg, "mx.example.net").size() == 4);
  CHECK(without_claimed(msg, "mx.example.net") == want);
  CHECK(without_claimed(msg, "mx.example.net.") == want);
  // Bare LF line ends, and a header section without a body.
  CHECK(without_claimed("A: 1\nX-MxGuard-Score: 9\nB: 2\n\nbody\n", "h") == "A: 1\nB: 2\n\nbody\n");
  CHECK(without_claimed("X-MxGuard-Score: 9", "h") == "");
  CHECK(without_claimed("A: 1\nAuthentication-Results: h; x", "h") == "A: 1\n");
  // Another host's results, or an empty host name, stay.
  CHECK(claimed_header_fields("Authentication-Results: other; spf=pass\r\n\r\n", "mx.example.net").empty());
  CHECK(claimed_header_fields("Authentication-Results: ; spf=pass\r\n\r\n", "").empty());
  // The header section ends at the first line that is not a field.
  CHECK(claimed_header_fields("A: 1\nnot a field\nX-MxGuard-Score: 1\n", "h").empty());
  CHECK(claimed_header_fields(" folded first\nX-MxGuard-Score: 1\n", "h").empty());
  CHECK(claimed_header_fields("", "h").empty());
}

// ---- archive members through the scanner -------------------------------------

namespace {

std::string le16s(uint32_t v) { return std::string{char(v), char(v >> 8)}; }
std::string le32s(uint32_t v) { return std::string{char(v), char(v >> 8), char(v >> 16), char(v >> 24)}; }

// A stored ZIP with one entry per name (flags 1 = encrypted).
std::string zip_of(const std::vector<std::pair<std::string, uint16_t>>& entries) {
  std::string out, cd;
  for (const auto& [name, flags] : entries) {
    const std::string fixed = le16s(20) + le16s(flags) + le16s(0) + le32s(0) + le32s(0) + le32s(1) + le32s(1) +
                              le16s(uint32_t(name.size())) + le16s(0);
    cd += "PK\x01\x02" + le16s(20) + fixed + le16s(0) + le16s(0) + le16s(0) + le32s(0) + le32s(uint32_t(out.size())) + name;
    out += "PK\x03\x04" + fixed + name + "x";
  }
  const auto cd_at = uint32_t(out.size());
  const auto n = uint32_t(entries.size());
  return out + cd + "PK\x05\x06" + le16s(0) + le16s(0) + le16s(n) + le16s(n) + le32s(uint32_t(cd.size())) + le32s(cd_at) +
         le16s(0);
}

std::string base64(std::string_view in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string o;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    if (i + 2 < in.size()) v |= uint8_t(in[i + 2]);
    o += a[v >> 18];
    o += a[(v >> 12) & 63];
    o += i + 1 < in.size() ? a[(v >> 6) & 63] : '=';
    o += i + 2 < in.size() ? a[v & 63] : '=';
  }
  return o;
}

std::vector<std::string> fired_rules(std::string_view rules_text, std::string_view msg) {
  auto parsed = parse_rules(rules_text, "t.rules");
  REQUIRE(parsed.ok());
  auto set = link_rules(std::move(*parsed));
  REQUIRE(set.ok());
  auto compiled = CompiledRules::compile(std::move(*set));
  REQUIRE(compiled.ok());
  Scanner scanner(*compiled);
  MessageScan scan(scanner);
  scan.feed(msg);
  scan.finish();
  std::vector<std::string> ids;
  for (const auto& r : scan.result({}, nullptr).reasons) ids.push_back(r.rule + (r.detail.empty() ? "" : "=" + r.detail));
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::string message_with_zip(const std::string& zip) {
  return "From: a@example.com\r\nSubject: files\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
         "Content-Type: text/plain\r\n\r\nhello\r\n--B\r\nContent-Type: application/zip; name=files.zip\r\n"
         "Content-Transfer-Encoding: base64\r\n\r\n" +
         base64(zip) + "\r\n--B--\r\n";
}

const char* kArchiveRules = R"(
rule NAME_EXE
  description program name
  score 5
  target attachment-name
  pattern /\.exe$/i

rule NAME_ZIP
  description archive name
  score 0.5
  target attachment-name
  pattern /\.zip$/i

rule MEMBER_EXE
  description program inside an archive
  score 3
  target archive-member
  pattern /\.exe$/i

rule ENCRYPTED
  description encrypted member
  score 2
  builtin archive encrypted
)";

}  // namespace

TEST_CASE("scanner: archive member names are attachment names and archive members") {
  CHECK(fired_rules(kArchiveRules, message_with_zip(zip_of({{"readme.txt", 0}, {"invoice.pdf.exe", 0}}))) ==
        std::vector<std::string>{"MEMBER_EXE", "NAME_EXE", "NAME_ZIP"});
  CHECK(fired_rules(kArchiveRules, message_with_zip(zip_of({{"a.txt", 0}, {"b.doc", 1}}))) ==
        std::vector<std::string>{"ENCRYPTED=zip b.doc", "NAME_ZIP"});
  // The same names outside an archive are not archive members.
  CHECK(fired_rules(kArchiveRules, "Subject: x\r\nContent-Type: application/octet-stream; name=setup.exe\r\n\r\nMZ\r\n") ==
        std::vector<std::string>{"NAME_EXE"});
}

TEST_CASE("rules: archive-member target and archive builtin") {
  CHECK(parse_error("rule A\n description d\n score 1\n target archive-member\n pattern /x/\n") == "");
  CHECK(parse_error("rule A\n description d\n score 1\n builtin archive encrypted\n") == "");
  CHECK(parse_error("rule A\n description d\n score 1\n builtin archive listed\n") != "");
}

// -- sender checks as the engine reports and scores them ----------------------

namespace {

// The factory's built-in rules with their shipped scores (the tests run in
// tests/, see tests/meson.build).
std::shared_ptr<const CompiledRules> factory_builtins() {
  static const std::shared_ptr<const CompiledRules> rules = [] {
    std::ifstream in("../rules/70-builtins.rules", std::ios::binary);
    REQUIRE(in);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto parsed = parse_rules(text, "70-builtins.rules");
    REQUIRE(parsed.ok());
    auto set = link_rules(std::move(*parsed));
    REQUIRE(set.ok());
    auto compiled = CompiledRules::compile(std::move(*set));
    REQUIRE(compiled.ok());
    return std::shared_ptr<const CompiledRules>(*compiled);
  }();
  return rules;
}

const char* kAuthMessage =
    "From: Alice <alice@example.com>\r\n"
    "To: bob@example.net\r\n"
    "Subject: figures\r\n"
    "Message-ID: <figures.1@example.com>\r\n"
    "\r\n"
    "The figures are attached.\r\n";

bool has_rule(const ScanResult& r, std::string_view id) {
  return std::any_of(r.reasons.begin(), r.reasons.end(), [&](const Reason& x) { return x.rule == id; });
}

bool contains_text(std::string_view hay, std::string_view needle) { return hay.find(needle) != std::string_view::npos; }

}  // namespace

// Every DKIM-Signature of these fails to parse, so there is no key to look
// up; the verdicts the engine gets without lookups are permerrors, reported
// as dkim=permerror and scored as an invalid signature, not as unsigned.
TEST_CASE("auth results: malformed DKIM signatures are dkim=permerror and score as invalid") {
  const std::string tail = "; d=example.com; s=sel; bh=AAAA; b=AAAA\r\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"v=1; a=rsa-sha1; h=from:to" + tail, "rsa-sha1"},
      {"v=1; a=rsa-sha256; h=to:subject" + tail, "From not signed"},
      {"v=1; a=rsa-sha512; h=from" + tail, "unknown a="},
      {"v=1; a=rsa-sha256; h=from; d=example.org" + tail, "duplicate tag"},
      {"v=2; a=rsa-sha256; h=from" + tail, "v=2"},
      {"v=1; a=rsa-sha256; h=from; t=1700000000; x=1600000000" + tail, "x before t"},
  };
  Scanner scanner(factory_builtins());
  std::vector<double> scores;
  for (const auto& [sig, what] : cases) {
    CAPTURE(what);
    MessageScan scan(scanner);
    scan.feed("DKIM-Signature: " + sig + kAuthMessage);
    scan.finish();
    CHECK(scan.dkim().key_names().empty());
    CheckResults checks;
    checks.dkim = scan.dkim().verify_with({}, 1'767'225'600);
    REQUIRE(checks.dkim->size() == 1);
    CHECK(checks.dkim->front().status == dkim::DkimStatus::kPermError);
    std::string ar = authentication_results("mx.test", "alice@example.com", "client.example", checks, scan.facts());
    CHECK(contains_text(ar, "dkim=permerror"));
    CHECK_FALSE(contains_text(ar, "dkim=none"));
    auto r = scan.result(checks, nullptr);
    CHECK(has_rule(r, "DKIM_INVALID"));
    CHECK_FALSE(has_rule(r, "DKIM_NONE"));
    // DKIM_INVALID (1.0) where an unsigned message gets DKIM_NONE (0.2).
    scores.push_back(r.score);
  }
  // Unsigned: dkim=none and DKIM_NONE.
  MessageScan scan(scanner);
  scan.feed(kAuthMessage);
  scan.finish();
  CheckResults checks;
  checks.dkim = scan.dkim().verify_with({}, 1'767'225'600);
  CHECK(checks.dkim->empty());
  CHECK(contains_text(authentication_results("mx.test", "alice@example.com", "h", checks, scan.facts()),
                      ";\r\n\tdkim=none"));
  auto unsigned_result = scan.result(checks, nullptr);
  CHECK(has_rule(unsigned_result, "DKIM_NONE"));
  for (double s : scores) CHECK(s - unsigned_result.score == doctest::Approx(0.8));
}

TEST_CASE("auth results: the field's layout and values that are no tokens") {
  MessageFacts facts;
  facts.from_domain = "example.com";
  CheckResults c;
  CHECK(authentication_results("mx.test", "a@example.com", "h", c, facts) ==
        "Authentication-Results: mx.test; none\r\n");
  c.spf = auth::SpfOutcome{auth::SpfResult::kPass, "example.com", ""};
  c.dkim = std::vector<dkim::DkimVerdict>{{dkim::DkimStatus::kPass, "example.com", "sel", "rsa-sha256", ""},
                                          {dkim::DkimStatus::kPermError, "", "", "", "missing d="}};
  c.dmarc = auth::DmarcOutcome{auth::DmarcResult::kPass, auth::DmarcPolicy::kNone, "example.com", "example.com", ""};
  CHECK(authentication_results("mx.test", "a@example.com", "h", c, facts) ==
        "Authentication-Results: mx.test;\r\n\tspf=pass smtp.mailfrom=example.com;\r\n"
        "\tdkim=pass header.d=example.com header.s=sel;\r\n\tdkim=permerror;\r\n"
        "\tdmarc=pass header.from=example.com\r\n");
  // What a sender wrote in s= or HELO cannot end the field or the value.
  c.dkim = std::vector<dkim::DkimVerdict>{{dkim::DkimStatus::kPermError, "example.com", "s;x\r\nX-Evil: 1", "", ""}};
  std::string ar = authentication_results("mx.test", "", "[192.0.2.1]", c, facts);
  CHECK(contains_text(ar, "spf=pass smtp.helo=\"[192.0.2.1]\""));
  CHECK(contains_text(ar, "header.s=\"s;x??X-Evil: 1\""));
}

TEST_CASE("dmarc request: the message id is the pct= sample key") {
  Scanner scanner(factory_builtins());
  MessageScan scan(scanner);
  scan.feed(kAuthMessage);
  scan.finish();
  auth::SpfOutcome spf{auth::SpfResult::kFail, "example.com", ""};
  std::vector<dkim::DkimVerdict> dkim = {{dkim::DkimStatus::kPass, "Example.COM", "sel", "rsa-sha256", ""},
                                         {dkim::DkimStatus::kFail, "other.example", "s", "rsa-sha256", ""}};
  auto req = dmarc_request(scan.facts(), spf, dkim, "Q123");
  CHECK(req.from_domain == "example.com");
  CHECK(req.from_fields == 1);
  CHECK(req.sample_key == "<figures.1@example.com>");
  CHECK(req.spf.result == auth::SpfResult::kFail);
  REQUIRE(req.dkim.size() == 2);
  CHECK(req.dkim[0].domain == "example.com");
  CHECK(req.dkim[0].pass);
  CHECK_FALSE(req.dkim[1].pass);
  // Without a Message-ID the queue id still keys the sample.
  MessageScan bare(scanner);
  bare.feed("From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n");
  bare.finish();
  CHECK(dmarc_request(bare.facts(), spf, {}, "Q123").sample_key == "Q123");
}

// A From field prepended to a message signed for the other one: DMARC read
// the first while DKIM bound the last, and a p=reject domain passed aligned.
TEST_CASE("two From fields: counted, a DMARC fail that scores high, no DKIM alignment") {
  Scanner scanner(factory_builtins());
  const std::string two = std::string("From: CEO <ceo@example.com>\r\n") + kAuthMessage;
  MessageScan scan(scanner);
  scan.feed(two);
  scan.finish();
  CHECK(scan.facts().from_fields == 2);
  CHECK(scan.facts().from_domain == "example.com");
  CHECK(dmarc_request(scan.facts(), {}, {}, "Q1").from_fields == 2);

  CheckResults c;
  c.spf = auth::SpfOutcome{auth::SpfResult::kPass, "example.com", ""};
  c.dkim = std::vector<dkim::DkimVerdict>{{dkim::DkimStatus::kPass, "example.com", "sel", "rsa-sha256", ""}};
  // What check_dmarc answers for it (see test_auth.cpp).
  c.dmarc = auth::DmarcOutcome{auth::DmarcResult::kFail, auth::DmarcPolicy::kReject, "example.com", "example.com",
                               "2 From fields (RFC 5322 allows one)"};
  auto r = scan.result(c, nullptr);
  CHECK(has_rule(r, "DMARC_FAIL_REJECT"));
  CHECK(has_rule(r, "FROM_MULTIPLE"));
  CHECK_FALSE(has_rule(r, "DKIM_ALIGNED"));
  CHECK_FALSE(has_rule(r, "DMARC_PASS"));
  CHECK(r.score >= 8.0);
  // The second From is a reason even when no DNS check ran.
  CHECK(has_rule(scan.result({}, nullptr), "FROM_MULTIPLE"));

  // One From with the same signature: aligned as before.
  MessageScan one(scanner);
  one.feed(kAuthMessage);
  one.finish();
  CHECK(one.facts().from_fields == 1);
  c.dmarc = auth::DmarcOutcome{auth::DmarcResult::kPass, auth::DmarcPolicy::kNone, "example.com", "example.com", ""};
  auto ok = one.result(c, nullptr);
  CHECK(has_rule(ok, "DKIM_ALIGNED"));
  CHECK(has_rule(ok, "DMARC_PASS"));
  CHECK_FALSE(has_rule(ok, "FROM_MULTIPLE"));
  CHECK(ok.score < 0);
}

namespace {

// What a message scores against `rules`, as "RULE=score" strings, sorted.
std::vector<std::string> scored(const std::shared_ptr<const CompiledRules>& rules, std::string_view msg) {
  Scanner scanner(rules);
  MessageScan scan(scanner);
  scan.feed(msg);
  scan.finish();
  std::vector<std::string> out;
  for (const auto& r : scan.result({}, nullptr).reasons) out.push_back(fmt::format("{}={:g}", r.rule, r.score));
  std::sort(out.begin(), out.end());
  return out;
}

std::shared_ptr<const CompiledRules> compiled_good() {
  auto set = link_rules(*parse_rules(kGood, "t.rules"));
  REQUIRE(set.ok());
  auto compiled = CompiledRules::compile(std::move(*set));
  REQUIRE(compiled.ok());
  return *compiled;
}

const char* kMoneyMail = "Subject: win $5 million now\r\nX-Mailer: bulk/mailer 2\r\n\r\nhello\r\n";

}  // namespace

TEST_CASE("rules: score RULE_ID N lines are overrides, wherever they stand") {
  auto parsed = parse_rule_file("# local\nscore SUBJ_MONEY 4.5\n"
                                "rule LOCAL_ONE\n description mine\n score 1\n score HDR_MAILER 0\n"
                                "  target text\n  pattern /local/\n"
                                "score\tCOMBO   -2\n",
                                "local.rules");
  REQUIRE(parsed.ok());
  REQUIRE(parsed->rules.size() == 1);
  CHECK(parsed->rules[0].score == doctest::Approx(1));  // its own one-word score
  REQUIRE(parsed->overrides.size() == 3);
  CHECK(parsed->overrides[0].rule == "SUBJ_MONEY");
  CHECK(parsed->overrides[0].score == doctest::Approx(4.5));
  CHECK(parsed->overrides[0].file == "local.rules");
  CHECK(parsed->overrides[0].line == 2);
  CHECK(parsed->overrides[1].rule == "HDR_MAILER");
  CHECK(parsed->overrides[1].score == 0);
  CHECK(parsed->overrides[1].line == 6);
  CHECK(parsed->overrides[2].rule == "COMBO");
  CHECK(parsed->overrides[2].score == doctest::Approx(-2));

  auto err = [](std::string_view text) {
    auto r = parse_rule_file(text, "l.rules");
    return r ? std::string() : r.error();
  };
  CHECK(err("score lower_case 1\n") == "l.rules:1: score override: 'lower_case' is not a rule id (score RULE_ID N)");
  CHECK(err("\nscore FOO many\n") == "l.rules:2: score override of FOO: 'many' is not a number in [-100, 100]");
  CHECK(err("score FOO 101\n") == "l.rules:1: score override of FOO: '101' is not a number in [-100, 100]");
  CHECK(err("score FOO 1 2\n") == "l.rules:1: score override of FOO: '1 2' is not a number in [-100, 100]");
  // A bundle's rules carry their own scores: parse_rules refuses overrides.
  auto plain = parse_rules("score FOO 1\n", "m.rules");
  REQUIRE_FALSE(plain.ok());
  CHECK(plain.error() == "m.rules:1: a score override of FOO is not allowed here");
}

TEST_CASE("rules: overrides apply to the linked set; unknown or repeated ids name the file and line") {
  auto set = link_rules(*parse_rules(kGood, "t.rules"));
  REQUIRE(set.ok());
  auto file = parse_rule_file("score SPF_FAIL 7\nscore COMBO2 0\n", "local.rules");
  REQUIRE(file.ok());
  REQUIRE(apply_overrides(*set, file->overrides).ok());
  CHECK(set->rules[2].score == 7);
  CHECK(set->rules[4].score == 0);
  CHECK(set->rules[0].score == doctest::Approx(1.5));  // untouched

  auto unknown = parse_rule_file("\n\nscore NO_SUCH_RULE 1\n", "local/x.rules");
  REQUIRE(unknown.ok());
  auto st = apply_overrides(*set, unknown->overrides);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error() == "local/x.rules:3: score override of unknown rule NO_SUCH_RULE");
  auto twice = parse_rule_file("score SPF_FAIL 1\nscore SPF_FAIL 2\n", "d.rules");
  REQUIRE(twice.ok());
  st = apply_overrides(*set, twice->overrides);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error() == "d.rules:2: rule SPF_FAIL is overridden already at d.rules:1");
}

TEST_CASE("bundle: a local layer changes scores and adds rules on top of a compiled set") {
  auto base = compiled_good();
  CHECK(scored(base, kMoneyMail) == std::vector<std::string>{"HDR_MAILER=0.5", "SUBJ_MONEY=1.5"});

  // Overrides only: no database is compiled again, the base's are shared.
  auto scores = parse_rule_file("score SUBJ_MONEY 6\nscore HDR_MAILER 0\n", "local.rules");
  REQUIRE(scores.ok());
  auto layered = CompiledRules::with_layer(base, scores->rules, scores->overrides);
  REQUIRE(layered.ok());
  CHECK((*layered)->db(Target::kSubject) == base->db(Target::kSubject));
  // Score 0 silences the rule: it is no reason any more.
  CHECK(scored(*layered, kMoneyMail) == std::vector<std::string>{"SUBJ_MONEY=6"});
  // The base is unchanged.
  CHECK(scored(base, kMoneyMail) == std::vector<std::string>{"HDR_MAILER=0.5", "SUBJ_MONEY=1.5"});

  // A local subject rule: the subject database is compiled again with both
  // patterns; the header one is still shared. A local combination may use
  // bundle rules, and an override may name a local rule.
  auto local = parse_rule_file("rule LOCAL_WIN\n description win\n score 2\n target subject\n pattern /\\bwin\\b/i\n"
                               "rule LOCAL_BOTH\n description both\n score 1\n combine LOCAL_WIN & HDR_MAILER\n"
                               "score LOCAL_WIN 2.5\n",
                               "local.rules");
  REQUIRE(local.ok());
  auto more = CompiledRules::with_layer(base, local->rules, local->overrides);
  REQUIRE(more.ok());
  CHECK((*more)->db(Target::kSubject) != base->db(Target::kSubject));
  CHECK((*more)->header_db("x-mailer") == base->header_db("x-mailer"));
  CHECK(scored(*more, kMoneyMail) ==
        std::vector<std::string>{"HDR_MAILER=0.5", "LOCAL_BOTH=1", "LOCAL_WIN=2.5", "SUBJ_MONEY=1.5"});
  // The layered set outlives the base it shares databases with.
  base.reset();
  CHECK(scored(*more, kMoneyMail).size() == 4);

  // A local rule with a bundle rule's id, and an override of an unknown rule, are refused.
  auto fresh = compiled_good();
  auto dup = parse_rule_file("rule SPF_FAIL\n description again\n score 1\n builtin spf fail\n", "/l/dup.rules");
  REQUIRE(dup.ok());
  auto refused = CompiledRules::with_layer(fresh, dup->rules, dup->overrides);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error() == "/l/dup.rules:1: rule SPF_FAIL: id already used at t.rules:14");
  auto unknown = parse_rule_file("score GONE 1\n", "/l/o.rules");
  REQUIRE(unknown.ok());
  refused = CompiledRules::with_layer(fresh, unknown->rules, unknown->overrides);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error() == "/l/o.rules:1: score override of unknown rule GONE");
  // A bad local pattern names its rule.
  auto bad = parse_rule_file("rule BAD_RE\n description x\n score 1\n target subject\n pattern /(a/\n", "/l/b.rules");
  REQUIRE(bad.ok());
  refused = CompiledRules::with_layer(fresh, bad->rules, bad->overrides);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().find("/l/b.rules:1: rule BAD_RE: pattern does not compile") == 0);
}

TEST_CASE("rules: a directory's overrides apply over its files; a missing local dir is an empty layer") {
  char tmpl[] = "/tmp/mxg-rulesdir-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  {
    std::ofstream(dir + "/10-a.rules") << "rule A_ONE\n description a\n score 1\n builtin spf fail\n";
    std::ofstream(dir + "/20-b.rules") << "# site\nscore A_ONE -3\n";
  }
  auto set = load_rules_dir(dir);
  REQUIRE(set.ok());
  REQUIRE(set->rules.size() == 1);
  CHECK(set->rules[0].score == -3);
  auto layer = read_rules_dir(dir, false, true);
  REQUIRE(layer.ok());
  REQUIRE(layer->overrides.size() == 1);
  CHECK(layer->overrides[0].file == dir + "/20-b.rules");  // whole paths for the local layer
  CHECK(layer->rules[0].file == dir + "/10-a.rules");
  { std::ofstream(dir + "/30-c.rules") << "score NOPE 1\n"; }
  auto bad = load_rules_dir(dir);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error() == "30-c.rules:1: score override of unknown rule NOPE");
  std::filesystem::remove_all(dir);
  auto none = read_rules_dir(dir, false, true);
  REQUIRE(none.ok());
  CHECK(none->rules.empty());
  CHECK(none->overrides.empty());
  CHECK_FALSE(read_rules_dir(dir, true, false).ok());
}
