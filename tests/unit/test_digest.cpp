// Digest link tokens (signing, every refusal, key rotation) and the digest
// mail (MIME structure read back with the walker, links that verify, escaping).
#include <doctest.h>

#include "temp_dir.hpp"
#include <sodium.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "mxguard/digest/message.hpp"
#include "mxguard/digest/send.hpp"
#include "mxguard/digest/token.hpp"
#include "mxguard/mime/walker.hpp"
#include "mxguard/store/config_store.hpp"

using namespace mxguard;
using namespace mxguard::digest;

namespace {

constexpr int64_t kT0 = 1'780'000'000'000;  // 2026-05-28T20:26:40Z
constexpr int64_t kDay = 86'400'000;

using mxguard::testing::TempDir;

Claims claims(std::string id = "0190f3c2a1b2c3.s1", Action a = Action::kRelease) {
  return Claims{"Bob@Example.com", std::move(id), a, kT0 + 30 * kDay, {}};
}

TokenError refusal_of(const std::variant<Claims, TokenRefusal>& v) {
  REQUIRE(std::holds_alternative<TokenRefusal>(v));
  return std::get<TokenRefusal>(v).error;
}

std::string b64url(std::string_view s) {
  const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_ENCODED_LEN(s.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()), s.size(), variant);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

std::string unb64url(std::string_view s) {
  std::string out(s.size(), '\0');
  size_t len = 0;
  REQUIRE(sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), s.data(), s.size(), nullptr, &len,
                            nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0);
  out.resize(len);
  return out;
}

}  // namespace

TEST_CASE("a signed token verifies and carries its claims") {
  TempDir dir;
  auto store = store::ConfigStore::open(dir.path());
  REQUIRE(store);
  auto key = signing_key(**store, kT0);
  REQUIRE(key);
  auto again = signing_key(**store, kT0 + 1);
  REQUIRE(again);
  CHECK(again->id == key->id);  // made once, on first use
  auto token = sign(*key, claims("0190f3c2a1b2c3.s1", Action::kReleaseAllow));
  REQUIRE(token);
  CHECK(token->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
        std::string::npos);
  auto v = verify(**store, *token, kT0);
  REQUIRE(std::holds_alternative<Claims>(v));
  const Claims& c = std::get<Claims>(v);
  CHECK(c.recipient == "bob@example.com");
  CHECK(c.message_id == "0190f3c2a1b2c3.s1");
  CHECK(c.action == Action::kReleaseAllow);
  CHECK(c.expires_ms == kT0 + 30 * kDay);
  CHECK(c.key_id == key->id);
}

TEST_CASE("verify refuses malformed, altered, forged, unknown-key and expired tokens, each with its own error") {
  TempDir dir;
  auto store = store::ConfigStore::open(dir.path());
  REQUIRE(store);
  auto key = signing_key(**store, kT0);
  REQUIRE(key);
  auto token = sign(*key, claims());
  REQUIRE(token);
  const size_t dot = token->find('.');

  SUBCASE("malformed") {
    for (std::string bad : {std::string(), std::string("nothing"), std::string("a.b.c"), std::string("!!.??"),
                            token->substr(0, dot) + "." + token->substr(dot + 1, 20), std::string(3000, 'A')})
      CHECK(refusal_of(verify(**store, bad, kT0)) == TokenError::kMalformed);
    // A valid signature over a payload of another layout is still no token.
    CHECK(refusal_of(verify(**store, b64url("mxd2\nk\nrelease\n1\na@b\nc.s1") + token->substr(dot), kT0)) ==
          TokenError::kMalformed);
  }
  SUBCASE("altered: another message, action or expiry under the same signature") {
    std::string payload = unb64url(token->substr(0, dot));
    for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{
             {"0190f3c2a1b2c3.s1", "0190f3c2a1b2c4.s1"}, {"release", "delete"},
             {std::to_string(kT0 + 30 * kDay), std::to_string(kT0 + 300 * kDay)}, {"bob@", "eve@"}}) {
      std::string changed = payload;
      auto at = changed.find(from);
      REQUIRE(at != std::string::npos);
      changed.replace(at, from.size(), to);
      CHECK(refusal_of(verify(**store, b64url(changed) + token->substr(dot), kT0)) == TokenError::kBadSignature);
    }
  }
  SUBCASE("forged: signed with another key that claims the stored key's id") {
    store::DigestKey forger = generate_key(kT0);
    forger.id = key->id;
    auto forged = sign(forger, claims());
    REQUIRE(forged);
    CHECK(refusal_of(verify(**store, *forged, kT0)) == TokenError::kBadSignature);
  }
  SUBCASE("unknown key") {
    auto stranger = sign(generate_key(kT0), claims());
    REQUIRE(stranger);
    CHECK(refusal_of(verify(**store, *stranger, kT0)) == TokenError::kUnknownKey);
  }
  SUBCASE("expired at the message's retention end, not a millisecond later") {
    CHECK(std::holds_alternative<Claims>(verify(**store, *token, kT0 + 30 * kDay - 1)));
    CHECK(refusal_of(verify(**store, *token, kT0 + 30 * kDay)) == TokenError::kExpired);
  }
  SUBCASE("sign refuses fields a token cannot carry") {
    CHECK_FALSE(sign(*key, Claims{"bob@example.com\nx", "id.s1", Action::kDelete, kT0, {}}));
    CHECK_FALSE(sign(*key, Claims{"", "id.s1", Action::kDelete, kT0, {}}));
    CHECK_FALSE(sign(*key, Claims{"bob@example.com", "id.s1", Action::kDelete, 0, {}}));
  }
}

TEST_CASE("rotation: the new key signs, the old one verifies until it is dropped") {
  TempDir dir;
  auto store = store::ConfigStore::open(dir.path());
  REQUIRE(store);
  auto k1 = signing_key(**store, kT0);
  REQUIRE(k1);
  auto old_token = sign(*k1, claims());
  REQUIRE(old_token);
  auto k2 = rotate_key(**store, kT0 + kDay, 30 * kDay);
  REQUIRE(k2);
  CHECK(k2->id != k1->id);
  auto now_signing = signing_key(**store, kT0 + kDay);
  REQUIRE(now_signing);
  CHECK(now_signing->id == k2->id);
  CHECK(std::holds_alternative<Claims>(verify(**store, *old_token, kT0 + 2 * kDay)));
  auto keys = (*store)->digest_keys();
  REQUIRE(keys);
  REQUIRE(keys->size() == 2);
  for (const auto& k : *keys) CHECK((k.id == k1->id ? k.retired_ms == kT0 + kDay : k.retired_ms == 0));

  // A rotation within the retention keeps k1; one after it drops k1, and
  // k1's links are then from an unknown key.
  REQUIRE(rotate_key(**store, kT0 + 10 * kDay, 30 * kDay));
  CHECK(std::holds_alternative<Claims>(verify(**store, *old_token, kT0 + 10 * kDay)));
  REQUIRE(rotate_key(**store, kT0 + 32 * kDay, 30 * kDay));
  CHECK(refusal_of(verify(**store, *old_token, kT0 + 2 * kDay)) == TokenError::kUnknownKey);
  auto left = (*store)->digest_keys();
  REQUIRE(left);
  CHECK(left->size() == 3);  // retired at days 10 and 32, and the signing one
}

TEST_CASE("a link acts once per action, and is forgotten after it expires") {
  TempDir dir;
  auto store = store::ConfigStore::open(dir.path());
  REQUIRE(store);
  Claims release = claims();
  Claims del = claims("0190f3c2a1b2c3.s1", Action::kDelete);
  CHECK(*claim_link(**store, release, kT0) == true);
  CHECK(*claim_link(**store, release, kT0 + 1) == false);
  CHECK(*claim_link(**store, del, kT0 + 2) == true);
  // After the expiry the mark is dropped (verify refuses the link by then).
  Claims other = claims("0190f3c2a1b2c9.s1");
  CHECK(*claim_link(**store, other, kT0 + 31 * kDay) == true);
  CHECK(*claim_link(**store, release, kT0 + 31 * kDay) == true);
}

TEST_CASE("action names round-trip") {
  for (Action a : {Action::kRelease, Action::kReleaseAllow, Action::kDelete}) CHECK(action_from_string(to_string(a)) == a);
  CHECK_FALSE(action_from_string("Release"));
  CHECK_FALSE(action_from_string("allow"));
}

namespace {

// Collects what a mail reader would: headers of the message, each text part's
// decoded text and HTML source.
struct Reader : mime::Handler {
  std::map<std::string, std::string> headers;
  std::vector<std::string> types;
  std::string text, html;
  std::vector<std::string> urls;
  void on_header(const mime::PartInfo& p, std::string_view name, std::string_view value) override {
    if (p.index == 0) headers[std::string(name)] = std::string(value);
  }
  void on_part_begin(const mime::PartInfo& p) override { types.push_back(p.content_type); }
  void on_text(const mime::PartInfo&, mime::TextKind kind, std::string_view t) override {
    if (kind == mime::TextKind::kPlain) text += t;
  }
  void on_html(const mime::PartInfo&, std::string_view src) override { html += src; }
  void on_url(const mime::PartInfo&, std::string_view url, std::string_view) override { urls.emplace_back(url); }
};

DigestRequest request() {
  DigestRequest r;
  r.recipient = "bob@example.com";
  r.from = "quarantine@example.com";
  r.hostname = "mx1.example.net";
  r.public_url = "https://mx1.example.net/";
  r.unique = "1890f3c2a1b2c3.abcdef";
  r.now_ms = kT0 + kDay;
  Entry a{"0190f3c2a1b2c3.s0", "spammer@bad.test", "<script>alert(1)</script> & \"cheap\" 'pills'", kT0, 9.5,
          kT0 + 30 * kDay, {"bob@example.com"}};
  Entry b{"0190f3c2a1b2c4.s1", "", "=?UTF-8?B?R3LDvMOfZQ==?= \x01\xff", kT0 + 1000, 12.25, kT0 + 7 * kDay,
          {"bob.shadow@example.org"}};
  r.entries = {a, b};
  return r;
}

}  // namespace

TEST_CASE("the digest mail parses as multipart/alternative with both parts, escaped, with links that verify") {
  TempDir dir;
  auto store = store::ConfigStore::open(dir.path());
  REQUIRE(store);
  auto key = signing_key(**store, kT0);
  REQUIRE(key);
  auto mail = build_digest(*key, request());
  REQUIRE(mail);
  CHECK(mail->subject == "Quarantine digest for bob@example.com: 2 new messages");
  CHECK(mail->message_id == "<1890f3c2a1b2c3.abcdef.digest@mx1.example.net>");
  for (size_t at = mail->data.find('\n'); at != std::string::npos; at = mail->data.find('\n', at + 1))
    REQUIRE(mail->data[at - 1] == '\r');

  Reader rd;
  mime::Walker w(rd);
  w.feed(mail->data);
  w.finish();
  CHECK(rd.headers["Subject"] == mail->subject);
  CHECK(rd.headers["From"] == "MxGuard quarantine <quarantine@example.com>");
  CHECK(rd.headers["To"] == "<bob@example.com>");
  CHECK(rd.headers["Date"] == "Fri, 29 May 2026 20:26:40 +0000");
  CHECK(rd.headers["MIME-Version"] == "1.0");
  CHECK(rd.headers["Auto-Submitted"] == "auto-generated");
  CHECK(rd.headers["Message-ID"] == mail->message_id);
  REQUIRE(rd.types.size() == 3);
  CHECK(rd.types[0] == "multipart/alternative");
  CHECK(rd.types[1] == "text/plain");
  CHECK(rd.types[2] == "text/html");

  // The text part lists both messages; the subject is decoded and cleaned.
  CHECK(rd.text.find("<script>alert(1)</script> & \"cheap\" 'pills'") != std::string::npos);
  // (the decoder reads the stray 0xff as Latin-1; the control becomes a space)
  CHECK(rd.text.find("Grüße  ") != std::string::npos);
  CHECK(rd.text.find('\x01') == std::string::npos);
  CHECK(rd.text.find("(no sender)") != std::string::npos);
  CHECK(rd.text.find("Score: 9.5") != std::string::npos);
  CHECK(rd.text.find("To:    bob.shadow@example.org") != std::string::npos);
  CHECK(rd.text.find("2026-05-28 20:26 UTC") != std::string::npos);

  // The HTML holds no markup from the mail and nothing remote.
  CHECK(rd.html.find("<script") == std::string::npos);
  CHECK(rd.html.find("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;cheap&quot; &#39;pills&#39;") !=
        std::string::npos);
  CHECK(rd.html.find("src=") == std::string::npos);
  CHECK(rd.html.find("<link") == std::string::npos);
  CHECK(rd.html.find("<style") == std::string::npos);

  // Three links per message in each part, all under public_url, each verifying
  // for its action, message and the recipient, expiring with the message.
  std::vector<std::string> links;
  for (const auto& u : rd.urls)
    if (u.starts_with("https://mx1.example.net/digest/")) links.push_back(u);
  REQUIRE(links.size() == 12);
  std::map<std::pair<std::string, std::string>, int64_t> seen;
  for (const auto& u : links) {
    std::string rest = u.substr(std::string("https://mx1.example.net/digest/").size());
    auto slash = rest.find('/');
    REQUIRE(slash != std::string::npos);
    auto v = verify(**store, rest.substr(slash + 1), kT0 + kDay);
    REQUIRE(std::holds_alternative<Claims>(v));
    const Claims& c = std::get<Claims>(v);
    CHECK(to_string(c.action) == rest.substr(0, slash));
    CHECK(c.recipient == "bob@example.com");
    seen[{c.message_id, std::string(to_string(c.action))}] = c.expires_ms;
  }
  CHECK(seen.size() == 6);
  CHECK(seen[{"0190f3c2a1b2c3.s0", "delete"}] == kT0 + 30 * kDay);
  CHECK(seen[{"0190f3c2a1b2c4.s1", "release_allow"}] == kT0 + 7 * kDay);
}

TEST_CASE("digest subjects, singular and plural; refusals of the builder") {
  CHECK(digest_subject("bob@example.com", 1) == "Quarantine digest for bob@example.com: 1 new message");
  CHECK(digest_subject("bob@example.com", 3) == "Quarantine digest for bob@example.com: 3 new messages");
  TempDir dir;
  auto store = store::ConfigStore::open(dir.path());
  REQUIRE(store);
  auto key = signing_key(**store, kT0);
  REQUIRE(key);
  DigestRequest r = request();
  r.entries.clear();
  CHECK_FALSE(build_digest(*key, r));
  r = request();
  r.public_url.clear();
  CHECK_FALSE(build_digest(*key, r));
  r = request();
  r.from = "a@b.test>\r\nBcc: eve@evil.test";
  CHECK_FALSE(build_digest(*key, r));
  CHECK(link_url("https://mx.test//", Action::kDelete, "T") == "https://mx.test/digest/delete/T");
}

TEST_CASE("display_text keeps UTF-8, replaces invalid bytes and controls, and cuts") {
  CHECK(display_text("a\r\nb\tc", 100) == "a  b c");
  CHECK(display_text("\xc0\xaf", 100) == "\xef\xbf\xbd\xef\xbf\xbd");
  CHECK(display_text("\xed\xa0\x80", 100).starts_with("\xef\xbf\xbd"));
  CHECK(display_text("Grüße", 100) == "Grüße");
  CHECK(display_text("abcdef", 3) == "abc...");
  CHECK(html_escape("<a href='x'>&\"</a>") == "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
}

namespace {

void hold(store::Spool& spool, const std::string& id, const std::vector<std::string>& held, int64_t when) {
  store::Envelope e;
  e.id = id;
  e.sender = "m@sender.test";
  e.recipients = held;
  e.quarantined = held;
  e.received_ms = when;
  e.subject = "held " + id;
  e.scanned = true;
  e.score = 9.5;
  e.action = "quarantine";
  const std::string data = "Subject: held\r\n\r\nbody\r\n";
  std::vector<store::Spool::Record> records{{&e, data}};
  REQUIRE(spool.store_batch(records).ok());
}

store::Domain domain(const std::string& name, const std::string& customer, unsigned days = 30) {
  store::Domain d;
  d.name = name;
  d.customer = customer;
  d.status = store::DomainStatus::kActive;
  d.quarantine_days = days;
  return d;
}

}  // namespace

TEST_CASE("planning: shadows merge into their owner, other tenants' shadows do not, off and last digests count") {
  TempDir dir;
  auto store = store::ConfigStore::open(dir.path());
  REQUIRE(store);
  REQUIRE((*store)->put_domain(domain("acme.test", "acme")).ok());
  REQUIRE((*store)->put_domain(domain("acme.org", "acme", 7)).ok());
  REQUIRE((*store)->put_domain(domain("globex.test", "globex")).ok());
  store::User bob;
  bob.name = "bob";
  bob.customer = "acme";
  bob.address = "Bob@acme.test";
  bob.shadows = {"bob@acme.org", "bob@globex.test"};  // the last is another customer's: ignored
  REQUIRE(*(*store)->add_user(bob));
  store::User dave;
  dave.name = "dave";
  dave.customer = "acme";
  dave.address = "dave@acme.test";
  dave.digest = false;
  REQUIRE(*(*store)->add_user(dave));
  auto spool = store::Spool::open(dir.path(), 0);
  REQUIRE(spool);
  hold(**spool, "0000000000001.s0", {"bob@acme.test"}, kT0);
  hold(**spool, "0000000000002.s0", {"BOB@acme.org", "bob@acme.test"}, kT0 + 1);  // one entry, held for both
  hold(**spool, "0000000000003.s0", {"bob@globex.test"}, kT0 + 2);  // a plain recipient of globex
  hold(**spool, "0000000000004.s0", {"dave@acme.test"}, kT0 + 3);
  hold(**spool, "0000000000005.s0", {"nobody@unknown.test"}, kT0 + 4);  // no such domain: skipped
  hold(**spool, "0000000000006.s0", {"bob@acme.test"}, kT0 + 100);     // after the period

  auto plan = plan_digests(**store, {spool->get()}, kT0 + 50);
  REQUIRE(plan);
  REQUIRE(plan->digests.size() == 2);
  const PlannedDigest& b = plan->digests[0];
  CHECK(b.scope.recipient == "bob@acme.test");
  CHECK(b.scope.user == "bob");
  CHECK(b.from == "postmaster@acme.test");
  REQUIRE(b.entries.size() == 2);
  CHECK(b.entries[0].id == "0000000000001.s0");
  CHECK(b.entries[1].id == "0000000000002.s0");
  CHECK(b.entries[1].held_for == std::vector<std::string>{"bob@acme.org", "bob@acme.test"});
  CHECK(b.entries[1].expires_ms == kT0 + 1 + 7 * kDay);  // the shorter retention of the two
  CHECK(plan->digests[1].scope.recipient == "bob@globex.test");
  CHECK(plan->digests[1].scope.user.empty());
  CHECK(plan->off == std::vector<std::string>{"dave@acme.test"});

  // After a digest up to kT0 + 50, only the later message is new.
  REQUIRE((*store)->set_last_digest("bob@acme.test", kT0 + 50).ok());
  auto next = plan_digests(**store, {spool->get()}, kT0 + 200);
  REQUIRE(next);
  REQUIRE(!next->digests.empty());
  CHECK(next->digests[0].scope.recipient == "bob@acme.test");
  REQUIRE(next->digests[0].entries.size() == 1);
  CHECK(next->digests[0].entries[0].id == "0000000000006.s0");

  // What a link's action may touch: the owner's addresses; a shadow alone is no recipient.
  auto scope = recipient_scope(**store, "bob@acme.test");
  REQUIRE(scope);
  CHECK(scope->addresses == std::vector<std::string>{"bob@acme.test", "bob@acme.org"});
  auto shadow = recipient_scope(**store, "bob@acme.org");
  REQUIRE(shadow);
  CHECK(shadow->addresses.empty());
}
