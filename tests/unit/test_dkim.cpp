// Unit tests for the dkim module: a test-only signer (OpenSSL, with its own
// naive whole-message canonicalisation, independent of src/dkim) signs
// messages the streaming verifier must accept or reject; fixtures signed by
// dkimpy and Mail::DKIM (tests/unit/dkim/) check interoperability.
#include <doctest.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "mxguard/dkim/dkim.hpp"

namespace {

using mxguard::dkim::DkimKeyAnswer;
using mxguard::dkim::DkimStatus;
using mxguard::dkim::DkimVerdict;
using mxguard::dkim::DkimVerifier;

constexpr int64_t kNow = 1'767'225'600;  // 2026-01-01T00:00:00Z

// ---------------------------------------------------------------- keys

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string b64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

struct TestKey {
  Pkey pkey;
  bool ed25519 = false;
  std::string p;  // base64 public key for p=

  std::string algorithm() const { return ed25519 ? "ed25519-sha256" : "rsa-sha256"; }
  std::string record() const { return std::string("v=DKIM1; k=") + (ed25519 ? "ed25519" : "rsa") + "; p=" + p; }
};

TestKey make_rsa(size_t bits) {
  TestKey k;
  k.pkey.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits));
  REQUIRE(k.pkey);
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(k.pkey.get(), &der);
  REQUIRE(len > 0);
  k.p = b64(std::string_view(reinterpret_cast<char*>(der), static_cast<size_t>(len)));
  OPENSSL_free(der);
  return k;
}

TestKey make_ed25519() {
  TestKey k;
  k.ed25519 = true;
  k.pkey.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  REQUIRE(k.pkey);
  unsigned char raw[32];
  size_t len = sizeof raw;
  REQUIRE(EVP_PKEY_get_raw_public_key(k.pkey.get(), raw, &len) == 1);
  k.p = b64(std::string_view(reinterpret_cast<char*>(raw), len));
  return k;
}

// Generated once: RSA key generation is the slow part of this suite.
const TestKey& rsa_key() {
  static const TestKey k = make_rsa(2048);
  return k;
}
const TestKey& other_rsa_key() {
  static const TestKey k = make_rsa(2048);
  return k;
}
const TestKey& ed_key() {
  static const TestKey k = make_ed25519();
  return k;
}

// ---------------------------------------- naive canonicalisation (reference)

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out += to;
  }
  out.append(s, pos);
  return out;
}

std::string strip_wsp(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// Header fields (each with its CRLF) and the body of a CRLF message.
struct Split {
  std::vector<std::string> fields;
  std::string body;
};

Split split_message(const std::string& msg) {
  Split out;
  const size_t end = msg.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  out.body = msg.substr(end + 4);
  std::istringstream in(msg.substr(0, end + 2));
  std::string line;
  while (std::getline(in, line)) {
    line += "\n";  // getline ate the LF; the CR is still there
    if ((line[0] == ' ' || line[0] == '\t') && !out.fields.empty()) {
      out.fields.back() += line;
    } else {
      out.fields.push_back(line);
    }
  }
  return out;
}

// Every run of SP/HTAB becomes one SP.
std::string squeeze_wsp(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool wsp = c == ' ' || c == '\t';
    if (!wsp) {
      out += c;
    } else if (out.empty() || out.back() != ' ') {
      out += ' ';
    }
  }
  return out;
}

std::string canon_header(bool relaxed, const std::string& field) {
  if (!relaxed) return field;
  const size_t colon = field.find(':');
  std::string name = lower(strip_wsp(field.substr(0, colon)));
  std::string value = squeeze_wsp(replace_all(field.substr(colon + 1), "\r\n", ""));
  return name + ":" + strip_wsp(value) + "\r\n";
}

std::string canon_body(bool relaxed, const std::string& body) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t e = body.find("\r\n", pos);
    if (e == std::string::npos) {
      lines.push_back(body.substr(pos));
      break;
    }
    lines.push_back(body.substr(pos, e - pos));
    pos = e + 2;
  }
  if (relaxed) {
    for (auto& l : lines) {
      l = squeeze_wsp(l);
      while (!l.empty() && l.back() == ' ') l.pop_back();
    }
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.empty()) return relaxed ? "" : "\r\n";
  std::string out;
  for (const auto& l : lines) out += l + "\r\n";
  return out;
}

std::string sha256(std::string_view data) {
  unsigned char md[32];
  unsigned int len = 0;
  REQUIRE(EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) == 1);
  return std::string(reinterpret_cast<char*>(md), len);
}

// ---------------------------------------------------------------- signer

struct SignSpec {
  const TestKey* key = nullptr;
  std::string header_canon = "relaxed";
  std::string body_canon = "relaxed";
  std::string domain = "example.com";
  std::string selector = "sel";
  std::vector<std::string> headers = {"from", "to", "subject", "date"};
  std::optional<uint64_t> l;
  std::string extra;        // more tags, each ending in "; "
  bool b_first = false;     // b= before the other tags instead of last
  bool fold = false;        // FWS everywhere it is allowed
  std::string algorithm;    // overrides the key's a= value
  std::string omit;         // a tag to leave out ("v", "bh", ...)
  std::string c_tag;        // c= as written, when not header/body
};

// Returns `msg` with a DKIM-Signature field prepended, computed the slow
// obvious way over the whole message.
std::string sign(const std::string& msg, const SignSpec& s) {
  const TestKey& key = s.key != nullptr ? *s.key : rsa_key();
  const Split m = split_message(msg);
  const bool relaxed_header = lower(s.header_canon) == "relaxed";
  std::string body = canon_body(lower(s.body_canon) == "relaxed", m.body);
  if (s.l) body = body.substr(0, static_cast<size_t>(*s.l));

  const std::string sep = s.fold ? " ;\r\n\t " : "; ";
  // After a leading b= the separator must not start with WSP: that WSP
  // would belong to the b= value, which is hashed as empty.
  const std::string b_sep = s.fold ? ";\r\n\t " : "; ";
  std::string hlist;
  for (const auto& h : s.headers) hlist += (hlist.empty() ? "" : (s.fold ? " :\r\n  " : ":")) + h;
  std::vector<std::pair<std::string, std::string>> tags = {
      {"v", "1"},
      {"a", s.algorithm.empty() ? key.algorithm() : s.algorithm},
      {"c", s.c_tag.empty() ? s.header_canon + "/" + s.body_canon : s.c_tag},
      {"d", s.domain},
      {"s", s.selector},
      {"h", hlist},
      {"bh", b64(sha256(body))},
  };
  if (s.l) tags.emplace_back("l", std::to_string(*s.l));
  std::string head = s.b_first ? " b=" + b_sep : " ";
  for (const auto& [name, value] : tags) {
    if (name == s.omit) continue;
    head += name + (s.fold ? " =\r\n " : "=") + value + sep;
  }
  head += s.extra;
  const std::string tail = s.b_first ? "" : "b=";
  const std::string field_for_hash = "DKIM-Signature:" + head + tail + "\r\n";

  // Bottom-up selection: the n-th use of a name takes the n-th instance
  // from the bottom; names with no instance left contribute nothing.
  std::string data;
  std::map<std::string, int> used;
  for (const auto& h : s.headers) {
    int skip = used[h]++;
    for (auto it = m.fields.rbegin(); it != m.fields.rend(); ++it) {
      if (lower(strip_wsp(it->substr(0, it->find(':')))) != lower(h)) continue;
      if (skip-- == 0) {
        data += canon_header(relaxed_header, *it);
        break;
      }
    }
  }
  std::string own = canon_header(relaxed_header, field_for_hash);
  own.resize(own.size() - 2);
  data += own;

  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::string tbs = key.ed25519 ? sha256(data) : data;
  REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, key.ed25519 ? nullptr : EVP_sha256(), nullptr, key.pkey.get()) == 1);
  size_t len = 0;
  REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(tbs.data()), tbs.size()) == 1);
  std::string sig(len, '\0');
  REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                         reinterpret_cast<const unsigned char*>(tbs.data()), tbs.size()) == 1);
  sig.resize(len);
  std::string b = b64(sig);
  if (s.fold) {
    // Fold the b= value too: the verifier must drop these FWS with it.
    for (size_t at = 40; at < b.size(); at += 43) b.insert(at, "\r\n\t");
  }
  std::string field = s.b_first ? "DKIM-Signature: b=" + b + head.substr(3) + "\r\n"
                                 : "DKIM-Signature:" + head + "b=" + b + "\r\n";
  return field + msg;
}

// ---------------------------------------------------------------- verify

const std::string kMessage =
    "From: Alice <alice@example.com>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: Lunch   on\r\n"
    "\tFriday?\r\n"
    "Date: Tue, 03 Mar 2026 10:15:00 +0000\r\n"
    "Message-ID: <m1@example.com>\r\n"
    "\r\n"
    "Hi Bob,\r\n"
    "\r\n"
    "How about  the place\t on the corner?  \r\n"
    "\r\n"
    "Alice\r\n";

struct Dns {
  std::map<std::string, DkimKeyAnswer> answers;

  Dns& txt(const std::string& name, std::vector<std::string> records) {
    answers[name] = DkimKeyAnswer{DkimKeyAnswer::Kind::kFound, std::move(records)};
    return *this;
  }
  Dns& key(const TestKey& k, const std::string& name = "sel._domainkey.example.com") {
    return txt(name, {k.record()});
  }
  DkimKeyAnswer operator()(const std::string& name) const {
    auto it = answers.find(name);
    return it == answers.end() ? DkimKeyAnswer{} : it->second;
  }
};

enum class Chunks { kWhole, kBytes, kRandom };

void feed_all(DkimVerifier& v, std::string_view msg, Chunks mode, unsigned seed = 1) {
  if (mode == Chunks::kWhole) {
    v.feed(msg);
  } else if (mode == Chunks::kBytes) {
    for (size_t i = 0; i < msg.size(); ++i) v.feed(msg.substr(i, 1));
  } else {
    std::mt19937 rng(seed);
    size_t pos = 0;
    while (pos < msg.size()) {
      const size_t n = std::uniform_int_distribution<size_t>(0, 97)(rng);
      v.feed(msg.substr(pos, n));
      pos += n;
    }
  }
  v.finish();
}

std::vector<DkimVerdict> verify(const std::string& msg, const Dns& dns, int64_t now = kNow,
                                Chunks mode = Chunks::kWhole, unsigned max = 8) {
  DkimVerifier v(max);
  feed_all(v, msg, mode);
  return v.verify(dns, now);
}

// The single verdict of a one-signature message.
DkimVerdict verdict(const std::string& msg, const Dns& dns, int64_t now = kNow) {
  auto all = verify(msg, dns, now);
  REQUIRE(all.size() == 1);
  return all[0];
}

std::string to_lf(const std::string& s) { return replace_all(s, "\r\n", "\n"); }

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("to_string names every status") {
  CHECK(mxguard::dkim::to_string(DkimStatus::kPass) == "pass");
  CHECK(mxguard::dkim::to_string(DkimStatus::kFail) == "fail");
  CHECK(mxguard::dkim::to_string(DkimStatus::kPermError) == "permerror");
  CHECK(mxguard::dkim::to_string(DkimStatus::kTempError) == "temperror");
  CHECK(mxguard::dkim::to_string(DkimStatus::kPolicy) == "policy");
}

TEST_CASE("rsa-sha256 and ed25519-sha256 pass under every canonicalisation pair and chunking") {
  for (const TestKey* key : {&rsa_key(), &ed_key()}) {
    for (const char* hc : {"simple", "relaxed"}) {
      for (const char* bc : {"simple", "relaxed"}) {
        CAPTURE(key->algorithm());
        CAPTURE(hc);
        CAPTURE(bc);
        const std::string msg = sign(kMessage, {.key = key, .header_canon = hc, .body_canon = bc});
        const Dns dns = Dns().key(*key);
        for (Chunks mode : {Chunks::kWhole, Chunks::kBytes, Chunks::kRandom}) {
          auto v = verify(msg, dns, kNow, mode);
          REQUIRE(v.size() == 1);
          CHECK(v[0].status == DkimStatus::kPass);
          CHECK(v[0].detail == "");
          CHECK(v[0].domain == "example.com");
          CHECK(v[0].selector == "sel");
          CHECK(v[0].algorithm == key->algorithm());
        }
        // The same message with bare LF line ends, split at every offset
        // pattern the random chunker produces.
        for (unsigned seed = 1; seed <= 20; ++seed) {
          DkimVerifier v;
          feed_all(v, to_lf(msg), Chunks::kRandom, seed);
          auto r = v.verify(dns, kNow);
          REQUIRE(r.size() == 1);
          CHECK(r[0].status == DkimStatus::kPass);
        }
      }
    }
  }
}

TEST_CASE("c= forms: header-only value defaults the body to simple; upper case accepted") {
  const Dns dns = Dns().key(rsa_key());
  CHECK(verdict(sign(kMessage, {.header_canon = "relaxed", .body_canon = "simple", .c_tag = "relaxed"}), dns).status ==
        DkimStatus::kPass);
  // Without c= both are simple.
  CHECK(verdict(sign(kMessage, {.header_canon = "simple", .body_canon = "simple", .omit = "c"}), dns).status ==
        DkimStatus::kPass);
  CHECK(verdict(sign(kMessage, {.header_canon = "relaxed", .body_canon = "relaxed", .c_tag = "relaxed"}), dns).status ==
        DkimStatus::kFail);
  SignSpec upper{.header_canon = "Relaxed", .body_canon = "SIMPLE"};
  CHECK(verdict(sign(kMessage, upper), Dns().key(rsa_key())).status == DkimStatus::kPass);
  SignSpec bad{.header_canon = "loose", .body_canon = "simple"};
  auto v = verdict(sign(kMessage, bad), Dns().key(rsa_key()));
  CHECK(v.status == DkimStatus::kPermError);
  CHECK(v.detail == "bad c=");
}

TEST_CASE("FWS anywhere in the tag list, b= folded, b= not last") {
  const Dns dns = Dns().key(rsa_key());
  CHECK(verdict(sign(kMessage, {.fold = true}), dns).status == DkimStatus::kPass);
  CHECK(verdict(sign(kMessage, {.b_first = true}), dns).status == DkimStatus::kPass);
  CHECK(verdict(sign(kMessage, {.header_canon = "simple", .fold = true}), dns).status == DkimStatus::kPass);
  CHECK(verdict(sign(kMessage, {.header_canon = "simple", .b_first = true, .fold = true}), dns).status ==
        DkimStatus::kPass);
  const Dns ed = Dns().key(ed_key());
  CHECK(verdict(sign(kMessage, {.key = &ed_key(), .fold = true}), ed).status == DkimStatus::kPass);
}

TEST_CASE("unknown tags are ignored, known optional tags accepted") {
  const Dns dns = Dns().key(rsa_key());
  auto v = verdict(sign(kMessage, {.extra = "zz=whatever; x_1=2; q=dns/txt; z=From:a@b|To:c@d; "}), dns);
  CHECK(v.status == DkimStatus::kPass);
}

TEST_CASE("tampering is detected") {
  const Dns dns = Dns().key(rsa_key());
  const std::string msg = sign(kMessage, {});
  SUBCASE("signed header changed") {
    auto v = verdict(replace_all(msg, "Lunch", "Dinner"), dns);
    CHECK(v.status == DkimStatus::kFail);
    CHECK(v.detail == "signature does not verify");
  }
  SUBCASE("body changed") {
    auto v = verdict(replace_all(msg, "corner", "square"), dns);
    CHECK(v.status == DkimStatus::kFail);
    CHECK(v.detail == "body hash mismatch");
  }
  SUBCASE("signature bytes changed") {
    const size_t b = msg.find(" b=") + 3;
    std::string bad = msg;
    bad[b + 10] = bad[b + 10] == 'A' ? 'B' : 'A';
    auto v = verdict(bad, dns);
    CHECK(v.status == DkimStatus::kFail);
    CHECK(v.detail == "signature does not verify");
  }
  SUBCASE("wrong key") {
    CHECK(verdict(msg, Dns().key(other_rsa_key())).status == DkimStatus::kFail);
  }
  SUBCASE("unsigned header added is fine") {
    CHECK(verdict("X-Spam: no\r\n" + msg, dns).status == DkimStatus::kPass);
  }
  SUBCASE("ed25519 body and header") {
    const Dns ed = Dns().key(ed_key());
    const std::string m = sign(kMessage, {.key = &ed_key()});
    CHECK(verdict(m, ed).status == DkimStatus::kPass);
    CHECK(verdict(replace_all(m, "Bob,", "Rob,"), ed).detail == "body hash mismatch");
    CHECK(verdict(replace_all(m, "alice@", "mallory@"), ed).detail == "signature does not verify");
  }
}

TEST_CASE("relaxed header canonicalisation tolerates refolding; simple does not") {
  const Dns dns = Dns().key(rsa_key());
  auto refold = [](std::string m) {
    m = replace_all(m, "Subject: Lunch   on\r\n\tFriday?", "subject:Lunch on\r\n   \t  Friday?  ");
    return replace_all(m, "To: Bob", "TO :   Bob");
  };
  CHECK(verdict(refold(sign(kMessage, {.header_canon = "relaxed"})), dns).status == DkimStatus::kPass);
  CHECK(verdict(refold(sign(kMessage, {.header_canon = "simple"})), dns).status == DkimStatus::kFail);
}

TEST_CASE("body canonicalisation: trailing lines, whitespace, empty bodies, no final CRLF") {
  const Dns dns = Dns().key(rsa_key());
  for (const char* bc : {"simple", "relaxed"}) {
    CAPTURE(bc);
    const std::string msg = sign(kMessage, {.body_canon = bc});
    CHECK(verdict(msg + "\r\n\r\n\r\n", dns).status == DkimStatus::kPass);
    CHECK(verdict(msg + "\n\n", dns).status == DkimStatus::kPass);
    // Dropping the final CRLF of the last line: the canonical form adds it.
    CHECK(verdict(msg.substr(0, msg.size() - 2), dns).status == DkimStatus::kPass);
    CHECK(verdict(msg + "more\r\n", dns).status == DkimStatus::kFail);
    for (const char* body : {"", "\r\n", "\r\n\r\n\r\n", "no newline", "x", "\r\n\r\nx\r\n\r\n", "  \t \r\n",
                             "a\rb\r\n", "trailing cr\r", "\r\r\n\r\n", " x \r\n \r\n\t\r\n"}) {
      CAPTURE(std::string(body));
      const std::string base = "From: a@example.com\r\nSubject: s\r\n\r\n" + std::string(body);
      const std::string m = sign(base, {.body_canon = bc, .headers = {"from"}});
      for (Chunks mode : {Chunks::kWhole, Chunks::kBytes, Chunks::kRandom}) {
        auto v = verify(m, dns, kNow, mode);
        REQUIRE(v.size() == 1);
        CHECK(v[0].status == DkimStatus::kPass);
      }
    }
  }
  const std::string relaxed = sign(kMessage, {.body_canon = "relaxed"});
  const std::string simple = sign(kMessage, {.body_canon = "simple"});
  auto respace = [](const std::string& m) { return replace_all(m, "How about  the", "How about \t  the"); };
  auto trail = [](const std::string& m) { return replace_all(m, "Alice\r\n", "Alice \t\r\n  \r\n"); };
  CHECK(verdict(respace(relaxed), dns).status == DkimStatus::kPass);
  CHECK(verdict(trail(relaxed), dns).status == DkimStatus::kPass);
  CHECK(verdict(respace(simple), dns).status == DkimStatus::kFail);
  CHECK(verdict(trail(simple), dns).status == DkimStatus::kFail);
  // Relaxed keeps leading whitespace (as one SP): removing it breaks.
  CHECK(verdict(replace_all(sign(kMessage + "  indented\r\n", {}), "  indented", "indented"), dns).status ==
        DkimStatus::kFail);
}

TEST_CASE("l= limits the hashed body") {
  const Dns dns = Dns().key(rsa_key());
  for (const char* bc : {"simple", "relaxed"}) {
    CAPTURE(bc);
    const bool relaxed = std::string(bc) == "relaxed";
    const uint64_t full = canon_body(relaxed, split_message(kMessage).body).size();
    const std::string msg = sign(kMessage, {.body_canon = bc, .l = full});
    CHECK(verdict(msg, dns).status == DkimStatus::kPass);
    CHECK(verdict(msg + "-- \r\nlist footer\r\n", dns).status == DkimStatus::kPass);
    auto shorter = verdict(replace_all(msg, "\r\nAlice\r\n", "\r\n"), dns);
    CHECK(shorter.status == DkimStatus::kFail);
    CHECK(shorter.detail == "body shorter than l=");
    const std::string part = sign(kMessage, {.body_canon = bc, .l = 10});
    CHECK(verdict(replace_all(part, "corner", "square"), dns).status == DkimStatus::kPass);
    CHECK(verdict(replace_all(part, "Hi Bob", "Yo Bob"), dns).status == DkimStatus::kFail);
    const std::string none = sign(kMessage, {.body_canon = bc, .l = 0});
    CHECK(verdict(none + "anything\r\n", dns).status == DkimStatus::kPass);
    for (unsigned seed = 1; seed < 10; ++seed) {
      DkimVerifier v;
      feed_all(v, part + "appended\r\n", Chunks::kRandom, seed);
      CHECK(v.verify(dns, kNow)[0].status == DkimStatus::kPass);
    }
  }
  auto bad = verdict(sign(kMessage, {.extra = "l=12x; "}), dns);
  CHECK(bad.status == DkimStatus::kPermError);
  CHECK(bad.detail == "bad l=");
}

TEST_CASE("h= picks headers bottom-up; over-signing blocks added copies") {
  const Dns dns = Dns().key(rsa_key());
  const std::string forged_from = "From: Mallory <ceo@example.com>\r\n";
  // Without over-signing, a From added on top is not covered: the bottom
  // one is what was signed, so the signature still passes (the reason to
  // over-sign).
  const std::string plain = sign(kMessage, {.headers = {"from", "to", "subject"}});
  CHECK(verdict(forged_from + plain, dns).status == DkimStatus::kPass);
  const std::string over = sign(kMessage, {.headers = {"from", "from", "to", "subject", "subject", "reply-to"}});
  CHECK(verdict(over, dns).status == DkimStatus::kPass);
  CHECK(verdict(forged_from + over, dns).status == DkimStatus::kFail);
  CHECK(verdict("Reply-To: x@evil.example\r\n" + over, dns).status == DkimStatus::kFail);
  // A header added below the signed one is picked instead of it.
  std::string below = replace_all(over, "Date:", "Subject: other\r\nDate:");
  CHECK(verdict(below, dns).status == DkimStatus::kFail);
  // Two real instances, both signed, in bottom-up order.
  const std::string two = "From: a@example.com\r\nX-Tag: one\r\nX-Tag: two\r\nSubject: s\r\n\r\nbody\r\n";
  const std::string signed_two = sign(two, {.headers = {"from", "x-tag", "x-tag"}});
  CHECK(verdict(signed_two, dns).status == DkimStatus::kPass);
  CHECK(verdict(replace_all(signed_two, "X-Tag: one", "X-Tag: uno"), dns).status == DkimStatus::kFail);
  // Header names in h= match case-insensitively.
  CHECK(verdict(sign(kMessage, {.headers = {"FROM", "To", "sUbJeCt"}}), dns).status == DkimStatus::kPass);
}

TEST_CASE("time: t= in the future beyond slack and x= in the past are policy") {
  const Dns dns = Dns().key(rsa_key());
  auto with = [](const std::string& extra) { return sign(kMessage, {.extra = extra}); };
  CHECK(verdict(with("t=" + std::to_string(kNow - 100) + "; x=" + std::to_string(kNow + 100) + "; "), dns).status ==
        DkimStatus::kPass);
  CHECK(verdict(with("t=" + std::to_string(kNow + 299) + "; "), dns).status == DkimStatus::kPass);
  auto future = verdict(with("t=" + std::to_string(kNow + 301) + "; "), dns);
  CHECK(future.status == DkimStatus::kPolicy);
  CHECK(future.detail == "signature from the future (t=)");
  auto expired = verdict(with("t=" + std::to_string(kNow - 1000) + "; x=" + std::to_string(kNow - 1) + "; "), dns);
  CHECK(expired.status == DkimStatus::kPolicy);
  CHECK(expired.detail == "signature expired (x=)");
  CHECK(verdict(with("x=" + std::to_string(kNow) + "; "), dns).status == DkimStatus::kPass);
  CHECK(verdict(with("t=99999999999999999999; "), dns).status == DkimStatus::kPermError);
  CHECK(verdict(with("t=18446744073709551615; "), dns).status == DkimStatus::kPolicy);
  auto order = verdict(with("t=200; x=100; "), dns);
  CHECK(order.status == DkimStatus::kPermError);
  CHECK(order.detail == "x= before t=");
}

TEST_CASE("malformed signatures are permerror") {
  const Dns dns = Dns().key(rsa_key());
  for (const char* tag : {"v", "a", "bh", "d", "h", "s"}) {
    CAPTURE(tag);
    auto v = verdict(sign(kMessage, {.omit = tag}), dns);
    CHECK(v.status == DkimStatus::kPermError);
    CHECK(v.detail == std::string("missing ") + tag + "=");
  }
  auto check_perm = [&](const std::string& msg, const std::string& detail) {
    auto v = verdict(msg, dns);
    CHECK(v.status == DkimStatus::kPermError);
    CHECK(v.detail == detail);
  };
  const std::string good = sign(kMessage, {});
  check_perm(replace_all(good, " b=", " b_=").substr(0), "missing b=");
  check_perm(sign(kMessage, {.extra = "d=example.com; "}), "signature syntax: duplicate tag d=");
  check_perm(sign(kMessage, {.extra = "bad tag=1; "}), "signature syntax: bad tag name");
  check_perm(sign(kMessage, {.extra = "novalue; "}), "signature syntax: tag without '='");
  check_perm(sign(kMessage, {.extra = " ; "}), "signature syntax: empty tag");
  check_perm(replace_all(good, "v=1", "v=2"), "unsupported v=");
  check_perm(sign(kMessage, {.algorithm = "rsa-sha1"}), "weak algorithm rsa-sha1");
  check_perm(sign(kMessage, {.algorithm = "rsa-md5"}), "unsupported algorithm");
  check_perm(sign(kMessage, {.headers = {"to", "subject"}}), "From not signed");
  check_perm(sign(kMessage, {.headers = {"from", "", "to"}}), "bad h=");
  check_perm(sign(kMessage, {.domain = "exa mple.com"}), "bad d=");
  check_perm(sign(kMessage, {.domain = "example..com"}), "bad d=");
  check_perm(sign(kMessage, {.selector = "sel;x"}), "signature syntax: tag without '='");
  check_perm(sign(kMessage, {.selector = "s/l"}), "bad s=");
  check_perm(sign(kMessage, {.extra = "q=http/well-known; "}), "unsupported q=");
  // b= and bh= base64: bad characters, a lone trailing symbol, data after
  // padding, empty.
  {
    const size_t b = good.find(" b=") + 3;
    std::string bad = good;
    bad.insert(b + 5, "*");
    check_perm(bad, "bad b= base64");
    check_perm(good.substr(0, b) + "QUJD=QUJD" + good.substr(good.find("\r\n", b)), "bad b= base64");
    check_perm(good.substr(0, b) + good.substr(good.find("\r\n", b)), "bad b= base64");
  }
  {
    const size_t bh = good.find("bh=") + 3;
    std::string bad = good;
    bad.insert(bh, "A");
    check_perm(bad, "bad bh= base64");
  }
  // A DKIM-Signature that is not a tag list at all.
  check_perm("DKIM-Signature: garbage\r\n" + kMessage, "signature syntax: tag without '='");
  check_perm("DKIM-Signature:\r\n" + kMessage, "missing v=");
}

// The engine asks DNS for key_names() and then calls verify_with() with the
// answers. When every signature is malformed there is no name to ask, and
// verify_with() with no answers must still give one permerror per
// signature: that is what tells a broken signature from an unsigned message.
TEST_CASE("malformed signatures need no key and still get a permerror verdict each") {
  const std::string good = sign(kMessage, {});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {sign(kMessage, {.algorithm = "rsa-sha1"}), "weak algorithm rsa-sha1"},
      {sign(kMessage, {.headers = {"to", "subject"}}), "From not signed"},
      {sign(kMessage, {.algorithm = "rsa-sha512"}), "unsupported algorithm"},
      {sign(kMessage, {.extra = "s=other; "}), "signature syntax: duplicate tag s="},
      {replace_all(good, "v=1", "v=2"), "unsupported v="},
      {sign(kMessage, {.extra = "t=1700000000; x=1600000000; "}), "x= before t="},
  };
  for (const auto& [msg, detail] : cases) {
    CAPTURE(detail);
    DkimVerifier v;
    feed_all(v, msg, Chunks::kWhole);
    CHECK(v.key_names().empty());
    auto verdicts = v.verify_with({}, kNow);
    REQUIRE(verdicts.size() == 1);
    CHECK(verdicts[0].status == DkimStatus::kPermError);
    CHECK(verdicts[0].detail == detail);
    // A tag list that does not parse names no signer; the others still do.
    if (!detail.starts_with("signature syntax")) CHECK(verdicts[0].domain == "example.com");
  }
  // Two broken signatures: two verdicts, still no lookup.
  DkimVerifier two;
  feed_all(two, sign(sign(kMessage, {.algorithm = "rsa-sha1"}), {.headers = {"to"}}), Chunks::kWhole);
  CHECK(two.key_names().empty());
  CHECK(two.verify_with({}, kNow).size() == 2);
  // An unsigned message has no verdict at all: that, and only that, is dkim=none.
  DkimVerifier none;
  feed_all(none, kMessage, Chunks::kWhole);
  CHECK(none.verify_with({}, kNow).empty());
}

TEST_CASE("i= must be within d=; t=s demands equality") {
  const Dns dns = Dns().key(rsa_key());
  CHECK(verdict(sign(kMessage, {.extra = "i=alice@example.com; "}), dns).status == DkimStatus::kPass);
  CHECK(verdict(sign(kMessage, {.extra = "i=@mail.EXAMPLE.com; "}), dns).status == DkimStatus::kPass);
  CHECK(verdict(sign(kMessage, {.extra = "i=al=40ice@example.com; "}), dns).status == DkimStatus::kPass);
  for (const char* bad : {"i=alice@example.net; ", "i=alice@badexample.com; ", "i=alice@com; "}) {
    auto v = verdict(sign(kMessage, {.extra = bad}), dns);
    CHECK(v.status == DkimStatus::kPermError);
    CHECK(v.detail == "i= not within d=");
  }
  CHECK(verdict(sign(kMessage, {.extra = "i=no-at-sign; "}), dns).detail == "bad i=");
  const Dns strict = Dns().txt("sel._domainkey.example.com", {"v=DKIM1; k=rsa; t=y:s; p=" + rsa_key().p});
  CHECK(verdict(sign(kMessage, {.extra = "i=a@example.com; "}), strict).status == DkimStatus::kPass);
  auto v = verdict(sign(kMessage, {.extra = "i=a@sub.example.com; "}), strict);
  CHECK(v.status == DkimStatus::kPermError);
  CHECK(v.detail == "i= domain differs from d= under t=s");
}

TEST_CASE("key records: revoked, mismatched, restricted, malformed, multiple") {
  const std::string msg = sign(kMessage, {});
  const std::string name = "sel._domainkey.example.com";
  auto with_txt = [&](std::vector<std::string> txt) { return verdict(msg, Dns().txt(name, std::move(txt))); };
  auto perm = [&](std::vector<std::string> txt, const std::string& detail) {
    auto v = with_txt(std::move(txt));
    CHECK(v.status == DkimStatus::kPermError);
    CHECK(v.detail == detail);
  };
  const std::string p = rsa_key().p;
  CHECK(with_txt({"p=" + p}).status == DkimStatus::kPass);
  CHECK(with_txt({"v=DKIM1;k=rsa;h=sha1:sha256;s=email;n=notes here;p=" + p + ";"}).status == DkimStatus::kPass);
  CHECK(with_txt({"v=DKIM1; p=" + p.substr(0, 50) + " \t " + p.substr(50)}).status == DkimStatus::kPass);
  CHECK(with_txt({"v=DKIM1; p=" + p + "; s=*"}).status == DkimStatus::kPass);
  perm({"v=DKIM1; k=rsa; p="}, "key revoked");
  perm({"v=DKIM1; k=rsa; p= ; n=gone"}, "key revoked");
  perm({"v=DKIM1; k=ed25519; p=" + ed_key().p}, "key type does not match a=");
  perm({"v=DKIM1; k=dsa; p=" + p}, "unsupported key type");
  perm({"v=DKIM1; h=sha1; p=" + p}, "key does not allow sha256 (h=)");
  perm({"v=DKIM1; s=tlsrpt; p=" + p}, "key not for email (s=)");
  perm({"k=rsa; v=DKIM1; p=" + p}, "bad key record version");
  perm({"v=DKIM2; p=" + p}, "bad key record version");
  perm({"v=DKIM1; k=rsa"}, "key record without p=");
  perm({"v=DKIM1; p=" + p + "!"}, "bad p= base64");
  perm({"v=DKIM1; p=" + b64("not a key")}, "bad rsa key");
  perm({"v=spf1 -all"}, "bad key record version");
  perm({"spf1 -all"}, "key record syntax: tag without '='");
  perm({"v=DKIM1; p=" + p + "; p=" + p}, "key record syntax: duplicate tag p=");
  perm({}, "no key record");
  // The first record that parses is used.
  CHECK(with_txt({"v=spf1 -all", "v=DKIM1; p=" + p}).status == DkimStatus::kPass);
  // An Ed25519 key of the wrong length, or an RSA key in k=ed25519.
  const std::string ed_msg = sign(kMessage, {.key = &ed_key()});
  auto ed_v = [&](const std::string& rec) { return verdict(ed_msg, Dns().txt(name, {rec})); };
  CHECK(ed_v("v=DKIM1; k=ed25519; p=" + ed_key().p).status == DkimStatus::kPass);
  CHECK(ed_v("v=DKIM1; k=ed25519; p=" + b64("short")).detail == "ed25519 key is not 32 bytes");
  CHECK(ed_v("v=DKIM1; k=ed25519; p=" + p).detail == "ed25519 key is not 32 bytes");
  CHECK(ed_v("v=DKIM1; k=ED25519; p=" + ed_key().p).status == DkimStatus::kPass);
}

TEST_CASE("RSA keys below 1024 bits are permerror; 1024 passes") {
  const TestKey small = make_rsa(768);
  auto v = verdict(sign(kMessage, {.key = &small}), Dns().key(small));
  CHECK(v.status == DkimStatus::kPermError);
  CHECK(v.detail == "rsa key too small (768 bits)");
  const TestKey k1024 = make_rsa(1024);
  CHECK(verdict(sign(kMessage, {.key = &k1024}), Dns().key(k1024)).status == DkimStatus::kPass);
}

TEST_CASE("lookup outcomes: temperror, not found, missing answers") {
  const std::string msg = sign(kMessage, {});
  Dns temp;
  temp.answers["sel._domainkey.example.com"] = DkimKeyAnswer{DkimKeyAnswer::Kind::kTempError, {}};
  CHECK(verdict(msg, temp).status == DkimStatus::kTempError);
  auto nf = verdict(msg, Dns());
  CHECK(nf.status == DkimStatus::kPermError);
  CHECK(nf.detail == "no key record");
  DkimVerifier v;
  v.feed(msg);
  v.finish();
  auto r = v.verify_with({}, kNow);
  REQUIRE(r.size() == 1);
  CHECK(r[0].status == DkimStatus::kTempError);
}

TEST_CASE("several signatures: order, key names deduplicated, max_signatures") {
  const std::string one = sign(kMessage, {.selector = "a"});
  const std::string two = sign(one, {.key = &ed_key(), .header_canon = "simple", .selector = "b"});
  const std::string three = sign(two, {.body_canon = "simple", .domain = "Example.COM", .selector = "a"});
  const std::string four = sign(three, {.domain = "other.example", .selector = "c", .l = 5});
  Dns dns;
  dns.key(rsa_key(), "a._domainkey.example.com").key(ed_key(), "b._domainkey.example.com");
  dns.key(rsa_key(), "c._domainkey.other.example");

  DkimVerifier v;
  feed_all(v, four, Chunks::kRandom);
  CHECK(v.key_names() == std::vector<std::string>{"c._domainkey.other.example", "a._domainkey.example.com",
                                                   "b._domainkey.example.com"});
  auto r = v.verify(dns, kNow);
  REQUIRE(r.size() == 4);
  for (const auto& x : r) CHECK(x.status == DkimStatus::kPass);
  CHECK(r[0].domain == "other.example");
  CHECK(r[1].domain == "example.com");
  CHECK(r[2].algorithm == "ed25519-sha256");

  // Breaking the body breaks all but the l=5 one.
  auto broken = verify(replace_all(four, "corner", "square"), dns);
  CHECK(broken[0].status == DkimStatus::kPass);
  CHECK(broken[1].status == DkimStatus::kFail);
  CHECK(broken[3].status == DkimStatus::kFail);

  DkimVerifier capped(2);
  feed_all(capped, four, Chunks::kWhole);
  CHECK(capped.key_names().size() == 2);
  CHECK(capped.verify(dns, kNow).size() == 2);
  DkimVerifier none(0);
  feed_all(none, four, Chunks::kWhole);
  CHECK(none.key_names().empty());
  CHECK(none.verify(dns, kNow).empty());

  // A broken signature still gets a verdict and does not need a lookup.
  const std::string mixed = "DKIM-Signature: v=1; a=rsa-sha1; d=x.example; s=old\r\n" + one;
  DkimVerifier m;
  feed_all(m, mixed, Chunks::kWhole);
  CHECK(m.key_names() == std::vector<std::string>{"a._domainkey.example.com"});
  auto mr = m.verify(dns, kNow);
  REQUIRE(mr.size() == 2);
  CHECK(mr[0].status == DkimStatus::kPermError);
  CHECK(mr[0].domain == "x.example");
  CHECK(mr[0].selector == "old");
  CHECK(mr[1].status == DkimStatus::kPass);
}

TEST_CASE("messages without signatures, without a body, without headers") {
  DkimVerifier v;
  feed_all(v, kMessage, Chunks::kRandom);
  CHECK(v.key_names().empty());
  CHECK(v.verify(Dns(), kNow).empty());

  // No blank line at all: the whole input is header, the body is empty.
  const std::string signed_msg = sign("From: a@example.com\r\nSubject: x\r\n\r\n", {.headers = {"from", "subject"}});
  const std::string headers_only = signed_msg.substr(0, signed_msg.size() - 2);
  CHECK(verdict(headers_only, Dns().key(rsa_key())).status == DkimStatus::kPass);
  CHECK(verdict(headers_only.substr(0, headers_only.size() - 2), Dns().key(rsa_key())).status == DkimStatus::kPass);

  DkimVerifier empty;
  empty.finish();
  CHECK(empty.verify(Dns(), kNow).empty());
  DkimVerifier body_only;
  feed_all(body_only, "\r\nDKIM-Signature: v=1\r\n", Chunks::kWhole);
  CHECK(body_only.verify(Dns(), kNow).empty());
}

TEST_CASE("verifier use before finish and after finish") {
  DkimVerifier v;
  v.feed(sign(kMessage, {}));
  CHECK(v.key_names().empty());
  CHECK(v.verify(Dns().key(rsa_key()), kNow).empty());
  v.finish();
  v.feed("garbage appended after finish\r\n");
  v.finish();
  auto r = v.verify(Dns().key(rsa_key()), kNow);
  REQUIRE(r.size() == 1);
  CHECK(r[0].status == DkimStatus::kPass);
}

TEST_CASE("header section beyond 256 KiB makes every signature permerror") {
  const std::string msg = sign(kMessage, {});
  std::string filler;
  while (filler.size() < 300 * 1024) filler += "X-Filler: " + std::string(60, 'f') + "\r\n";
  const std::string late_sig = "DKIM-Signature: v=1; a=rsa-sha256; d=late.example; s=x; h=from; bh=; b=\r\n";
  for (Chunks mode : {Chunks::kWhole, Chunks::kRandom}) {
    DkimVerifier v;
    feed_all(v, msg.substr(0, msg.find("From:")) + filler + late_sig + "dkim-signature : v=1\r\n" +
                    msg.substr(msg.find("From:")),
             mode);
    CHECK(v.key_names().empty());
    auto r = v.verify(Dns().key(rsa_key()), kNow);
    REQUIRE(r.size() == 3);
    for (const auto& x : r) {
      CHECK(x.status == DkimStatus::kPermError);
      CHECK(x.detail == "header section exceeds 262144 bytes");
    }
    CHECK(r[0].domain == "example.com");
  }
  // One field straddling the bound, itself a DKIM-Signature.
  std::string straddle = std::string("X-A: ") + std::string(256 * 1024 - 20, 'a') + "\r\n" +
                         "DKIM-Signature: v=1; " + std::string(100, ' ') + "\r\n" + kMessage;
  for (unsigned seed = 1; seed < 5; ++seed) {
    DkimVerifier v;
    feed_all(v, straddle, Chunks::kRandom, seed);
    auto r = v.verify(Dns(), kNow);
    REQUIRE(r.size() == 1);
    CHECK(r[0].status == DkimStatus::kPermError);
  }
  // A header section of exactly 256 KiB is still fine; one byte more is not.
  const size_t header_len = msg.find("\r\n\r\n") + 2;
  size_t remaining = 256 * 1024 - header_len;
  std::string fits;
  while (remaining > 200) {
    fits += "X-Fill: " + std::string(60, 'f') + "\r\n";
    remaining -= 70;
  }
  fits += "X-Fill: " + std::string(remaining - 10, 'f') + "\r\n";
  REQUIRE(fits.size() + header_len == 256 * 1024);
  CHECK(verdict(fits + msg, Dns().key(rsa_key())).status == DkimStatus::kPass);
  CHECK(verdict("X" + fits + msg, Dns().key(rsa_key())).status == DkimStatus::kPermError);
}

TEST_CASE("large body streamed in uneven chunks") {
  std::string body;
  std::mt19937 rng(7);
  while (body.size() < 3 * 1024 * 1024) {
    const int len = std::uniform_int_distribution<int>(0, 90)(rng);
    for (int i = 0; i < len; ++i) {
      const int r = std::uniform_int_distribution<int>(0, 15)(rng);
      body += r == 0 ? ' ' : r == 1 ? '\t' : static_cast<char>('a' + r);
    }
    body += "\r\n";
  }
  const std::string base = "From: a@example.com\r\nSubject: big\r\n\r\n" + body + "\r\n\r\n";
  for (const char* bc : {"simple", "relaxed"}) {
    const std::string msg = sign(base, {.body_canon = bc, .headers = {"from", "subject"}});
    DkimVerifier v;
    feed_all(v, to_lf(msg), Chunks::kRandom, 3);
    auto r = v.verify(Dns().key(rsa_key()), kNow);
    REQUIRE(r.size() == 1);
    CHECK(r[0].status == DkimStatus::kPass);
  }
}

TEST_CASE("random bodies and headers agree with the reference canonicalisation") {
  // Differential check of the streaming canonicalisers against the naive
  // ones above: random WSP, bare CR, CRLF and folds, fed with random LF/CRLF
  // line ends and random chunk splits, with and without l=.
  std::mt19937 rng(20260303);
  auto pick = [&rng](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  const Dns dns = Dns().key(ed_key());
  for (int round = 0; round < 300; ++round) {
    std::string value;  // a header value with folds and WSP
    for (int t = 0, n = pick(12); t < n; ++t) {
      const char* tokens[] = {"w", "xy", " ", "\t", "  ", "\r\n ", "\r\n\t", "\r"};
      value += tokens[pick(8)];
    }
    std::string signer_body;
    std::string fed_body;
    char prev = 0;
    for (int t = 0, n = pick(40); t < n; ++t) {
      switch (pick(6)) {
        case 0: signer_body += "a"; fed_body += "a"; prev = 'a'; break;
        case 1: signer_body += " "; fed_body += " "; prev = ' '; break;
        case 2: signer_body += "\t"; fed_body += "\t"; prev = '\t'; break;
        case 3: signer_body += "\r"; fed_body += "\r"; prev = '\r'; break;
        default:
          signer_body += "\r\n";
          // After a bare CR an LF would join it into one line end.
          fed_body += (prev == '\r' || pick(2) == 0) ? "\r\n" : "\n";
          prev = '\n';
      }
    }
    // A bare CR must not end up right before the header/body separator or
    // a value's end, where it would pair with the following LF.
    if (!value.empty() && value.back() == '\r') value += "z";
    const std::string header = "From: a@example.com\r\nX-Rand:" + value + "\r\n\r\n";
    const bool relaxed = pick(2) == 0;
    std::optional<uint64_t> l;
    if (pick(3) == 0) l = static_cast<uint64_t>(pick(static_cast<int>(canon_body(relaxed, signer_body).size()) + 1));
    const std::string signed_msg =
        sign(header + signer_body, {.key = &ed_key(), .header_canon = relaxed ? "relaxed" : "simple",
                                    .body_canon = relaxed ? "relaxed" : "simple", .headers = {"from", "x-rand"}, .l = l});
    const std::string fed = signed_msg.substr(0, signed_msg.size() - signer_body.size()) + fed_body;
    CAPTURE(round);
    CAPTURE(fed);
    DkimVerifier v;
    feed_all(v, fed, round % 3 == 0 ? Chunks::kBytes : Chunks::kRandom, static_cast<unsigned>(round));
    auto r = v.verify(dns, kNow);
    REQUIRE(r.size() == 1);
    CHECK(r[0].status == DkimStatus::kPass);
  }
}

TEST_CASE("fixtures signed by dkimpy and Mail::DKIM verify") {
  const std::filesystem::path dir = "unit/dkim";
  Dns dns;
  {
    std::istringstream keys(read_file(dir / "keys.txt"));
    std::string name, record;
    while (keys >> name && std::getline(keys, record)) dns.txt(name, {record.substr(1)});
  }
  REQUIRE(dns.answers.size() == 2);
  const std::map<std::string, size_t> expected = {
      {"rsa-simple-simple.eml", 1},
      {"rsa-relaxed-relaxed.eml", 1},
      {"rsa-relaxed-simple.eml", 1},
      {"ed25519-relaxed-relaxed.eml", 1},
      {"ed25519-simple-simple.eml", 1},
      {"multi-signature.eml", 3},
      {"length-rsa-footer.eml", 1},
      {"length-ed25519-footer.eml", 1},
      {"realworld-relaxed.eml", 1},
      {"realworld-ed25519-relaxed-simple.eml", 1},
      {"realworld-maildkim-relaxed.eml", 1},
      {"realworld-maildkim-simple.eml", 1},
      {"lf-only-rsa-simple.eml", 1},
  };
  // After every t= in the fixtures; none has x=.
  constexpr int64_t kFixtureNow = 4'102'444'800;  // 2100-01-01
  for (const auto& entry : expected) {
    const std::string& file = entry.first;  // not a structured binding: CAPTURE captures it
    const size_t count = entry.second;
    CAPTURE(file);
    const std::string msg = read_file(dir / file);
    for (Chunks mode : {Chunks::kWhole, Chunks::kBytes, Chunks::kRandom}) {
      auto r = verify(msg, dns, kFixtureNow, mode);
      REQUIRE(r.size() == count);
      for (const auto& v : r) {
        CAPTURE(v.detail);
        CHECK(v.status == DkimStatus::kPass);
        CHECK(v.domain == "example.org");
      }
    }
    // Any change to the signed body must now fail every signature except
    // those whose l= stops before it.
    if (file.starts_with("length-")) continue;
    const std::string tampered = replace_all(msg, "noon", "nine");
    const std::string tampered2 = replace_all(tampered, "usual place", "usual plaice");
    for (const auto& v : verify(tampered2, dns, kFixtureNow)) CHECK(v.status == DkimStatus::kFail);
  }
  // The l= fixtures fail once the signed part changes.
  const std::string len = read_file(dir / "length-rsa-footer.eml");
  CHECK(verify(replace_all(len, "usual place", "usual plaice"), dns, kFixtureNow)[0].status == DkimStatus::kFail);
  // The folded, whitespace-heavy real-world one survives relaxed-safe
  // rewrapping under relaxed/relaxed.
  const std::string rw = read_file(dir / "realworld-relaxed.eml");
  const std::string rewrapped = replace_all(replace_all(rw, "has folded   over", "has folded over"), "Hi all,   ", "Hi all,");
  REQUIRE(rewrapped != rw);
  CHECK(verify(rewrapped, dns, kFixtureNow)[0].status == DkimStatus::kPass);
}

// Throughput of feed() on a 64 MiB body, prose (WSP to squeeze, trailing
// WSP) and base64 (a typical large attachment), printed against plain
// SHA-256 of the same bytes as the peer. Skipped in the suite; run with:
//   tests/unit-dkim -tc='*throughput*' --no-skip
TEST_CASE("feed() throughput" * doctest::skip()) {
  const std::string prose = "Lorem ipsum dolor sit amet,  consectetur adipiscing elit, sed do eiusmod\t \r\n";
  const std::string base64 = "TG9yZW0gaXBzdW0gZG9sb3Igc2l0IGFtZXQsICBjb25zZWN0ZXR1ciBhZGlwaXNjaW5nIGVsaXQs\r\n";
  const std::string head = "From: a@example.com\r\nSubject: big\r\n\r\n";
  for (const auto& [kind, line] : {std::pair{"prose", prose}, std::pair{"base64", base64}}) {
    std::string body;
    while (body.size() < 64 * 1024 * 1024) body += line;
    for (const char* bc : {"relaxed", "simple"}) {
      const std::string msg = sign(head + body.substr(0, 1024), {.body_canon = bc, .headers = {"from"}});
      const std::string full = msg.substr(0, msg.find("From:")) + head + body;
      auto t0 = std::chrono::steady_clock::now();
      DkimVerifier v;
      for (size_t pos = 0; pos < full.size(); pos += 64 * 1024) v.feed(std::string_view(full).substr(pos, 64 * 1024));
      v.finish();
      auto t1 = std::chrono::steady_clock::now();
      (void)sha256(full);
      auto t2 = std::chrono::steady_clock::now();
      const double mb = static_cast<double>(full.size()) / 1e6;
      const double feed_s = std::chrono::duration<double>(t1 - t0).count();
      const double sha_s = std::chrono::duration<double>(t2 - t1).count();
      std::printf("dkim feed %-6s %-7s: %5.0f MB/s  (plain sha256 %5.0f MB/s, ratio %.2f)\n", kind, bc, mb / feed_s,
                  mb / sha_s, sha_s / feed_s);
      // The signature covered only the first KiB: the whole body was hashed.
      CHECK(v.verify(Dns().key(rsa_key()), kNow)[0].detail == "body hash mismatch");
    }
  }
}
