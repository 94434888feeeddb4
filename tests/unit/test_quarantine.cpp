// The quarantine store (records, compressed bodies, index, release, delete,
// retention purge, corruption), its console views (tenant scope, safe
// preview, time arguments) and the digest links' operations.
#include <doctest.h>

#include "temp_dir.hpp"
#include <stdlib.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "mxguard/admin/digest_links.hpp"
#include "mxguard/admin/quarantine.hpp"
#include "mxguard/digest/send.hpp"
#include "mxguard/digest/token.hpp"
#include "mxguard/store/config_store.hpp"
#include "mxguard/store/quarantine.hpp"
#include "mxguard/store/spool.hpp"
#include "quarantine_view.hpp"
#include "validate.hpp"

using namespace mxguard;
using namespace mxguard::store;

namespace {

constexpr int64_t kT0 = 1'780'000'000'000;  // 2026-05-28T20:26:40Z
constexpr int64_t kDay = 86'400'000;

using mxguard::testing::TempDir;

// What the engine stores: our Received, Authentication-Results and score
// fields above the client's message.
std::string stored_message(const std::string& subject, const std::string& body) {
  return "Received: from [192.0.2.1] ([192.0.2.1])\r\n\tby mx.test with ESMTP id x\r\n"
         "Authentication-Results: mx.test; none\r\nX-MxGuard-Score: 9.00 quarantine\r\n"
         "From: Mallory <m@sender.test>\r\nSubject: " +
         subject + "\r\n\r\n" + body;
}
constexpr size_t kOurHeaders = 144;  // bytes before "From:" in stored_message

Envelope held_envelope(const std::string& id, std::vector<std::string> rcpts, std::vector<std::string> held,
                       int64_t when, const std::string& subject = "cheap pills") {
  Envelope e;
  e.id = id;
  e.sender = "m@sender.test";
  e.recipients = std::move(rcpts);
  e.quarantined = std::move(held);
  e.client_ip = "192.0.2.1";
  e.helo = "spam.test";
  e.received_ms = when;
  e.subject = subject;
  e.message_id = "<" + id + "@sender.test>";
  e.scanned = true;
  e.score = 9.5;
  e.action = "quarantine";
  e.reasons = {"EICAR=25", "MISSING_DATE=1.2"};
  return e;
}

void put_held(Spool& spool, const Envelope& e, const std::string& data) {
  std::vector<Spool::Record> records{{&e, data}};
  REQUIRE(spool.store_batch(records).ok());
}

size_t entries(const Spool& spool, MDB_dbi dbi) {
  auto txn = Txn::begin(spool.env(), true);
  REQUIRE(txn.ok());
  MDB_stat st;
  REQUIRE(mdb_stat(txn->get(), dbi, &st) == 0);
  return st.ms_entries;
}

std::vector<std::string> ids_of(const Result<std::vector<QuarantineRecord>>& r) {
  REQUIRE(r.ok());
  std::vector<std::string> out;
  for (const auto& x : *r) out.push_back(x.envelope.id);
  return out;
}

// Incompressible bytes, so a large message needs several body chunks.
std::string noise(size_t n) {
  std::mt19937 rng(42);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

}  // namespace

TEST_CASE("quarantine: a record survives encoding; damage is a clear error") {
  QuarantineRecord r;
  r.envelope = held_envelope("0a.s1", {"a@x.example", "b@y.example"}, {"a@x.example"}, kT0);
  r.raw_size = 1000;
  r.content_offset = 120;
  r.stored_size = 400;
  r.chunks = 1;
  r.releases = 2;
  std::string bytes = encode_quarantine_record(r);
  auto back = decode_quarantine_record(bytes);
  REQUIRE(back.ok());
  CHECK(back->envelope.id == "0a.s1");
  CHECK(back->held() == std::vector<std::string>{"a@x.example"});
  CHECK(back->envelope.recipients.size() == 2);
  CHECK(back->envelope.reasons == r.envelope.reasons);
  CHECK(back->envelope.score == 9.5);
  CHECK(back->raw_size == 1000);
  CHECK(back->content_offset == 120);
  CHECK(back->releases == 2);

  CHECK(!decode_quarantine_record("").ok());
  CHECK(decode_quarantine_record(std::string(1, '\x09') + bytes.substr(1)).error().find("version") != std::string::npos);
  CHECK(!decode_quarantine_record(bytes.substr(0, bytes.size() - 1)).ok());
  CHECK(!decode_quarantine_record(bytes + "x").ok());
  r.content_offset = 2000;  // beyond the message
  CHECK(!decode_quarantine_record(encode_quarantine_record(r)).ok());
}

TEST_CASE("quarantine: store keeps the only copy, compressed and chunked, with its index") {
  TempDir dir;
  auto spool = Spool::open(dir.path(), 1);
  REQUIRE(spool.ok());
  Spool& s = **spool;
  const std::string data = stored_message("big", noise(300 * 1024));
  Envelope e = held_envelope("0b.s1", {"Bob@Example.com", "ann@other.example"}, {"Bob@Example.com", "ann@other.example"}, kT0);
  e.size = data.size();
  put_held(s, e, data);

  // Nothing queued, nothing in the delivery tables.
  CHECK(!s.envelope("0b.s1")->has_value());
  CHECK(!s.queue_entry("0b.s1")->has_value());
  CHECK(*s.quarantined_ids() == std::vector<std::string>{"0b.s1"});
  auto rec = quarantine_get(s, "0b.s1");
  REQUIRE(rec.ok());
  REQUIRE(rec->has_value());
  CHECK((*rec)->raw_size == data.size());
  CHECK((*rec)->content_offset == kOurHeaders);
  CHECK(data.substr(kOurHeaders, 5) == "From:");
  CHECK((*rec)->chunks >= 5);  // 300 KiB of noise in values of at most 64 KiB
  CHECK(entries(s, s.dbs().qbodies) == (*rec)->chunks);
  {
    auto txn = Txn::begin(s.env(), true);
    Cursor cur(*txn, s.dbs().qbodies);
    for (bool ok = cur.seek(""); ok; ok = cur.next()) CHECK(cur.value().size() <= kBodyChunkSize);
  }
  auto back = quarantine_message(s, "0b.s1");
  REQUIRE(back.ok());
  REQUIRE(back->has_value());
  CHECK(**back == data);
  // Index: time, two domains, two recipients.
  CHECK(entries(s, s.dbs().qindex) == 5);

  // Text compresses.
  const std::string text = stored_message("text", std::string(200'000, 'a'));
  Envelope t = held_envelope("0c.s1", {"bob@example.com"}, {"bob@example.com"}, kT0 + 1);
  put_held(s, t, text);
  CHECK((*quarantine_get(s, "0c.s1"))->stored_size < text.size() / 20);
  CHECK(**quarantine_message(s, "0c.s1") == text);
}

TEST_CASE("quarantine: a partly quarantined message is queued for the others") {
  TempDir dir;
  auto spool = Spool::open(dir.path(), 2);
  REQUIRE(spool.ok());
  Spool& s = **spool;
  const std::string data = stored_message("mixed", "hello\r\n");
  Envelope e = held_envelope("0d.s2", {"a@x.example", "b@y.example"}, {"b@y.example"}, kT0);
  put_held(s, e, data);
  auto q = s.queue_entry("0d.s2");
  REQUIRE(q.ok());
  REQUIRE(q->has_value());
  CHECK(pending_recipients(**s.envelope("0d.s2"), **q).size() == 1);
  CHECK(ids_of(quarantine_list(s, {})) == std::vector<std::string>{"0d.s2"});
  CHECK((*quarantine_get(s, "0d.s2"))->held() == std::vector<std::string>{"b@y.example"});
}

TEST_CASE("quarantine: list by recipient, domain and time through the index") {
  TempDir dir;
  auto spool = Spool::open(dir.path(), 0);
  REQUIRE(spool.ok());
  Spool& s = **spool;
  put_held(s, held_envelope("01.s0", {"a@x.example"}, {"a@x.example"}, kT0 + 3 * kDay), stored_message("1", "x"));
  put_held(s, held_envelope("02.s0", {"b@x.example", "c@y.example"}, {"b@x.example", "c@y.example"}, kT0 + kDay),
        stored_message("2", "x"));
  put_held(s, held_envelope("03.s0", {"c@y.example"}, {"c@y.example"}, kT0 + 2 * kDay), stored_message("3", "x"));
  put_held(s, held_envelope("04.s0", {"d@x.example.net"}, {"d@x.example.net"}, kT0), stored_message("4", "x"));

  CHECK(ids_of(quarantine_list(s, {})) == std::vector<std::string>{"04.s0", "02.s0", "03.s0", "01.s0"});
  QuarantineQuery by_domain;
  by_domain.domains = {"X.Example"};
  CHECK(ids_of(quarantine_list(s, by_domain)) == std::vector<std::string>{"02.s0", "01.s0"});
  QuarantineQuery by_rcpt;
  by_rcpt.recipients = {"C@y.example"};
  CHECK(ids_of(quarantine_list(s, by_rcpt)) == std::vector<std::string>{"02.s0", "03.s0"});
  by_rcpt.recipients = {"c@y.example", "a@x.example"};
  CHECK(ids_of(quarantine_list(s, by_rcpt)) == std::vector<std::string>{"02.s0", "03.s0", "01.s0"});
  QuarantineQuery window;
  window.since_ms = kT0 + kDay;
  window.until_ms = kT0 + 3 * kDay;
  CHECK(ids_of(quarantine_list(s, window)) == std::vector<std::string>{"02.s0", "03.s0"});
  by_domain.since_ms = kT0 + 2 * kDay;
  CHECK(ids_of(quarantine_list(s, by_domain)) == std::vector<std::string>{"01.s0"});
  QuarantineQuery none;
  none.domains = {"nowhere.example"};
  CHECK(ids_of(quarantine_list(s, none)).empty());
}

TEST_CASE("quarantine: release queues a readable copy for one recipient") {
  TempDir dir;
  auto spool = Spool::open(dir.path(), 1);
  REQUIRE(spool.ok());
  Spool& s = **spool;
  const std::string data = stored_message("release me", noise(100 * 1024));
  put_held(s, held_envelope("0190f3c2a1b2c.s1", {"a@x.example", "B@y.example"}, {"a@x.example", "B@y.example"}, kT0), data);

  auto id = quarantine_release(s, "0190f3c2a1b2c.s1", {"b@Y.example"}, kT0 + kDay);
  REQUIRE(id.ok());
  CHECK(*id == "0190f3c2a1b2c-r1.s1");
  CHECK(shard_of_message_id(*id) == 1);
  CHECK(console::check_message_id(*id).ok());
  auto env = s.envelope(*id);
  REQUIRE(env->has_value());
  CHECK((*env)->recipients == std::vector<std::string>{"B@y.example"});
  CHECK((*env)->quarantined.empty());
  CHECK((*env)->score == 9.5);
  auto q = s.queue_entry(*id);
  REQUIRE(q->has_value());
  CHECK((*q)->next_attempt_ms == kT0 + kDay);
  CHECK(pending_recipients(**env, **q).size() == 1);
  CHECK(**s.read_message(*id) == data);
  CHECK(*s.due(kT0 + kDay, 10) == std::vector<std::string>{*id});
  // Still held for the other recipient, and no longer findable by the released one.
  CHECK((*quarantine_get(s, "0190f3c2a1b2c.s1"))->held() == std::vector<std::string>{"a@x.example"});
  QuarantineQuery by_b;
  by_b.recipients = {"b@y.example"};
  CHECK(ids_of(quarantine_list(s, by_b)).empty());
  by_b.recipients.clear();
  by_b.domains = {"y.example"};
  CHECK(ids_of(quarantine_list(s, by_b)).empty());
  // Not held any more: an error, nothing written.
  CHECK(!quarantine_release(s, "0190f3c2a1b2c.s1", {"b@y.example"}, kT0).ok());
  CHECK(entries(s, s.dbs().queue) == 1);

  auto second = quarantine_release(s, "0190f3c2a1b2c.s1", {"a@x.example"}, kT0 + kDay);
  REQUIRE(second.ok());
  CHECK(*second == "0190f3c2a1b2c-r2.s1");
  // The last recipient released: the quarantine holds nothing of it.
  CHECK(!quarantine_get(s, "0190f3c2a1b2c.s1")->has_value());
  CHECK(entries(s, s.dbs().quarantine) == 0);
  CHECK(entries(s, s.dbs().qbodies) == 0);
  CHECK(entries(s, s.dbs().qindex) == 0);
  CHECK(!quarantine_release(s, "0190f3c2a1b2c.s1", {"a@x.example"}, kT0).ok());
  CHECK(!quarantine_release(s, "nosuch.s1", {"a@x.example"}, kT0).ok());
}

TEST_CASE("quarantine: delete one recipient's copy, then the rest") {
  TempDir dir;
  auto spool = Spool::open(dir.path(), 0);
  REQUIRE(spool.ok());
  Spool& s = **spool;
  put_held(s, held_envelope("05.s0", {"a@x.example", "b@y.example"}, {"a@x.example", "b@y.example"}, kT0),
        stored_message("d", "x"));
  auto gone = quarantine_delete(s, "05.s0", {"A@X.example"});
  REQUIRE(gone.ok());
  CHECK(!*gone);
  CHECK((*quarantine_get(s, "05.s0"))->held() == std::vector<std::string>{"b@y.example"});
  CHECK(!quarantine_delete(s, "05.s0", {"a@x.example"}).ok());
  gone = quarantine_delete(s, "05.s0", {});
  REQUIRE(gone.ok());
  CHECK(*gone);
  CHECK(entries(s, s.dbs().quarantine) == 0);
  CHECK(entries(s, s.dbs().qbodies) == 0);
  CHECK(entries(s, s.dbs().qindex) == 0);
  CHECK(quarantine_delete(s, "05.s0", {}).error().find("no such") != std::string::npos);
}

TEST_CASE("quarantine: purge follows each domain's retention in bounded batches") {
  TempDir dir;
  auto spool = Spool::open(dir.path(), 0);
  REQUIRE(spool.ok());
  Spool& s = **spool;
  // 1,200 old messages for short.example (1 day), more than two batches.
  {
    std::vector<Envelope> envs;
    for (int i = 0; i < 1200; ++i)
      envs.push_back(held_envelope(fmt::format("{:06}.s0", i), {"u@short.example"}, {"u@short.example"}, kT0 + i));
    const std::string data = stored_message("bulk", "x");
    std::vector<Spool::Record> records;
    for (const auto& e : envs) records.push_back({&e, data});
    REQUIRE(s.store_batch(records).ok());
  }
  // One message for both domains, one recent one.
  put_held(s, held_envelope("m.s0", {"u@short.example", "v@long.example"}, {"u@short.example", "v@long.example"}, kT0),
        stored_message("both", "x"));
  put_held(s, held_envelope("new.s0", {"u@short.example"}, {"u@short.example"}, kT0 + 5 * kDay),
        stored_message("new", "x"));

  unsigned calls = 0;
  auto days_for = [&](std::string_view domain) -> unsigned {
    ++calls;
    return domain == "short.example" ? 1 : 30;
  };
  auto n = quarantine_purge(s, kT0 + kDay / 2, days_for);  // nothing is a day old yet
  REQUIRE(n.ok());
  CHECK(*n == 0);

  calls = 0;
  n = quarantine_purge(s, kT0 + 2 * kDay, days_for);
  REQUIRE(n.ok());
  CHECK(*n == 1200);
  CHECK(calls >= 3);  // one index walk per batch of at most 500 messages
  auto left = ids_of(quarantine_list(s, {}));
  CHECK(left == std::vector<std::string>{"m.s0", "new.s0"});
  CHECK((*quarantine_get(s, "m.s0"))->held() == std::vector<std::string>{"v@long.example"});
  CHECK(entries(s, s.dbs().qbodies) == 2);

  n = quarantine_purge(s, kT0 + 31 * kDay, days_for);
  REQUIRE(n.ok());
  CHECK(*n == 2);
  CHECK(entries(s, s.dbs().quarantine) == 0);
  CHECK(entries(s, s.dbs().qbodies) == 0);
  CHECK(entries(s, s.dbs().qindex) == 0);

  // A retention that cannot be known keeps the mail.
  put_held(s, held_envelope("k.s0", {"u@short.example"}, {"u@short.example"}, kT0), stored_message("k", "x"));
  n = quarantine_purge(s, kT0 + 400 * kDay, [](std::string_view) { return ~0u; });
  REQUIRE(n.ok());
  CHECK(*n == 0);
}

TEST_CASE("quarantine: corrupt records and bodies are clear errors") {
  TempDir dir;
  auto spool = Spool::open(dir.path(), 0);
  REQUIRE(spool.ok());
  Spool& s = **spool;
  put_held(s, held_envelope("g.s0", {"a@x.example"}, {"a@x.example"}, kT0), stored_message("good", noise(150'000)));
  put_held(s, held_envelope("b.s0", {"a@x.example"}, {"a@x.example"}, kT0 + 1), stored_message("bad", "x"));
  auto put = [&](MDB_dbi dbi, const std::string& k, const std::string& v) {
    auto txn = Txn::begin(s.env(), false);
    REQUIRE(txn->put(dbi, k, v).ok());
    REQUIRE(txn->commit().ok());
  };

  // A damaged body chunk fails the frame checksum or the decoder.
  {
    std::string chunk;
    {
      auto txn = Txn::begin(s.env(), true);
      chunk = std::string(**txn->get(s.dbs().qbodies, body_chunk_key("g.s0", 1)));
    }
    chunk[chunk.size() / 2] ^= 0x55;
    put(s.dbs().qbodies, body_chunk_key("g.s0", 1), chunk);
    auto m = quarantine_message(s, "g.s0");
    REQUIRE(!m.ok());
    CHECK(m.error().find("g.s0") != std::string::npos);
    CHECK(!quarantine_release(s, "g.s0", {"a@x.example"}, kT0).ok());
    CHECK(entries(s, s.dbs().queue) == 0);  // nothing half-written
  }
  // A missing chunk.
  {
    auto txn = Txn::begin(s.env(), false);
    REQUIRE(txn->del(s.dbs().qbodies, body_chunk_key("g.s0", 0)).ok());
    REQUIRE(txn->commit().ok());
    auto m = quarantine_message(s, "g.s0");
    REQUIRE(!m.ok());
    CHECK(m.error().find("missing") != std::string::npos);
  }
  // A record that does not decode: named in the error; only a whole delete clears it.
  put(s.dbs().quarantine, "b.s0", "\x01garbage");
  auto r = quarantine_get(s, "b.s0");
  REQUIRE(!r.ok());
  CHECK(r.error().find("quarantine record b.s0") != std::string::npos);
  CHECK(!quarantine_list(s, {}).ok());
  CHECK(!quarantine_delete(s, "b.s0", {"a@x.example"}).ok());
  auto gone = quarantine_delete(s, "b.s0", {});
  REQUIRE(gone.ok());
  CHECK(*gone);
  CHECK(ids_of(quarantine_list(s, {})) == std::vector<std::string>{"g.s0"});
  QuarantineQuery by_rcpt;
  by_rcpt.recipients = {"a@x.example"};
  CHECK(ids_of(quarantine_list(s, by_rcpt)) == std::vector<std::string>{"g.s0"});
  CHECK(entries(s, s.dbs().qindex) == 3);  // only g.s0's keys are left
}

// Customers acme (a.example, b.example) and globex (g.example), and acme's
// user anna with her address and shadows.
void tenants(ConfigStore& c, const std::string& address, std::vector<std::string> shadows) {
  for (auto [name, customer] : {std::pair{"a.example", "acme"}, {"b.example", "acme"}, {"g.example", "globex"}}) {
    Domain d;
    d.name = name;
    d.customer = customer;
    d.status = DomainStatus::kActive;
    REQUIRE(c.put_domain(d).ok());
  }
  User anna;
  anna.name = "anna";
  anna.role = Role::kUser;
  anna.customer = "acme";
  anna.address = address;
  anna.shadows = std::move(shadows);
  REQUIRE(*c.add_user(anna));
}

TEST_CASE("quarantine console: scope follows the role, shadows stay in the customer") {
  TempDir dir;
  auto cs = ConfigStore::open(dir.path());
  REQUIRE(cs.ok());
  ConfigStore& c = **cs;
  tenants(c, "Anna@a.example", {"alias@b.example", "spy@g.example"});

  console::Principal op;
  auto all = console::QuarantineScope::of(c, op);
  REQUIRE(all.ok());
  CHECK(all->all());
  CHECK(all->sees("x@anything.example"));

  console::Principal admin{"acme-admin", Role::kCustomerAdmin, "acme", ""};
  auto a = console::QuarantineScope::of(c, admin);
  REQUIRE(a.ok());
  CHECK(a->sees("x@A.example"));
  CHECK(a->sees("y@b.example"));
  CHECK(!a->sees("z@g.example"));
  CHECK(a->visible({"x@a.example", "z@g.example"}) == std::vector<std::string>{"x@a.example"});

  console::Principal pm{"pm", Role::kPostmaster, "acme", "b.example"};
  auto p = console::QuarantineScope::of(c, pm);
  REQUIRE(p.ok());
  CHECK(p->sees("y@b.example"));
  CHECK(!p->sees("x@a.example"));

  console::Principal user{"anna", Role::kUser, "acme", ""};
  auto u = console::QuarantineScope::of(c, user);
  REQUIRE(u.ok());
  CHECK(u->sees("anna@a.example"));
  CHECK(u->sees("ALIAS@b.example"));
  CHECK(!u->sees("spy@g.example"));  // a shadow in another customer's domain
  CHECK(!u->sees("bob@a.example"));
  CHECK(u->covers_domain("b.example"));
  CHECK(!u->covers_domain("g.example"));
}

TEST_CASE("quarantine console: the preview shows text, strips HTML, lists attachments") {
  const std::string msg =
      "From: a@b.example\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
      "--b\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>there</b></p><script>evil()</script>"
      "<img src=\"http://remote.example/x.gif\">\r\n"
      "--b\r\nContent-Type: text/plain; name=notes.txt\r\nContent-Disposition: attachment\r\n\r\nsecret notes\r\n"
      "--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
      "Content-Disposition: attachment; filename=\"doc.pdf\"\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";
  console::Preview p = console::make_preview(msg, {});
  REQUIRE(p.headers.size() == 4);
  CHECK(p.headers[1].second == "café");
  CHECK(p.text.find("Hello there") != std::string::npos);
  CHECK(p.text_from_html);
  CHECK(p.text.find('<') == std::string::npos);
  CHECK(p.text.find("evil") == std::string::npos);
  CHECK(p.text.find("remote.example") == std::string::npos);
  CHECK(p.text.find("secret") == std::string::npos);  // a text attachment is listed, not shown
  REQUIRE(p.attachments.size() == 2);
  CHECK(p.attachments[0].filename == "notes.txt");
  CHECK(p.attachments[1].filename == "doc.pdf");
  CHECK(p.attachments[1].size == 9);
  CHECK(p.attachments[1].detected_type == "application/pdf");

  CHECK(console::terminal_safe("a\r\nb\tc\x1b[2J\xc2\x9b" "d") == "a\nb\tc\\x1b[2J\\u009bd");
}

TEST_CASE("quarantine console: time arguments") {
  const int64_t now = kT0;
  CHECK(*console::parse_time_arg("now", now) == now);
  CHECK(*console::parse_time_arg("2h", now) == now - 7'200'000);
  CHECK(*console::parse_time_arg("+31d", now) == now + 31 * kDay);
  CHECK(*console::parse_time_arg("@1780000000", now) == 1'780'000'000'000);
  CHECK(*console::parse_time_arg("1970-01-02", now) == kDay);
  CHECK(*console::parse_time_arg("2026-05-28T20:26:40Z", now) == kT0);
  CHECK(*console::parse_time_arg("2026-05-28T22:26:40+02:00", now) == kT0);
  CHECK(*console::parse_time_arg("2026-05-28 20:26:40.5", now) == kT0 + 500);
  for (const char* bad : {"", "yesterday", "2026-02-30", "2026-05-28T25:00", "12", "+2026-01-01", "2026-05-28Tx"})
    CHECK_MESSAGE(!console::parse_time_arg(bad, now).ok(), bad);
}

// The scope/permission table of the quarantine operations (admin library):
// operator all; customer-admin their customer's domains; postmaster one
// domain; user their address and shadows. Another tenant's message is
// not_found (out_of_scope), and refusing changes nothing.
TEST_CASE("quarantine operations: each role acts within its scope only") {
  TempDir dir;
  Config cfg;
  cfg.state_dir = dir.path();
  auto cs = ConfigStore::open(dir.path());
  REQUIRE(cs.ok());
  ConfigStore& c = **cs;
  tenants(c, "anna@a.example", {"alias@b.example"});
  {
    auto spool = Spool::open(dir.path(), 1);
    REQUIRE(spool.ok());
    put_held(**spool, held_envelope("0a1.s1", {"anna@a.example"}, {"anna@a.example"}, kT0, "for anna"),
             stored_message("for anna", "hello"));
    put_held(**spool, held_envelope("0a2.s1", {"bob@a.example"}, {"bob@a.example"}, kT0 + 1, "for bob"),
             stored_message("for bob", "hello"));
    put_held(**spool, held_envelope("0b1.s1", {"alias@b.example"}, {"alias@b.example"}, kT0 + 2, "shadow"),
             stored_message("shadow", "hello"));
    put_held(**spool, held_envelope("0g1.s1", {"x@g.example"}, {"x@g.example"}, kT0 + 3, "globex <b>mail</b>"),
             stored_message("globex <b>mail</b>", "<script>alert(1)</script>"));
  }
  admin::Principal op;
  admin::Principal acme{"acme-admin", Role::kCustomerAdmin, "acme", ""};
  admin::Principal pm{"pm", Role::kPostmaster, "acme", "b.example"};
  admin::Principal user{"anna", Role::kUser, "acme", ""};
  admin::Principal globex{"globex-admin", Role::kCustomerAdmin, "globex", ""};
  auto ids = [&](const admin::Principal& p, admin::QuarantineFilter f = {}) {
    auto rows = admin::list_quarantine({cfg, c, p}, f);
    REQUIRE(rows);
    std::vector<std::string> out;
    for (const auto& h : *rows) out.push_back(h.record.envelope.id);
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(ids(op) == V{"0a1.s1", "0a2.s1", "0b1.s1", "0g1.s1"});
  CHECK(ids(acme) == V{"0a1.s1", "0a2.s1", "0b1.s1"});
  CHECK(ids(pm) == V{"0b1.s1"});
  CHECK(ids(user) == V{"0a1.s1", "0b1.s1"});
  CHECK(ids(globex) == V{"0g1.s1"});
  CHECK(ids(acme, {.search = "BOB"}) == V{"0a2.s1"});
  CHECK(ids(acme, {.domain = "b.example"}) == V{"0b1.s1"});
  CHECK(ids(op, {.since = "@" + std::to_string((kT0 + 2) / 1000 + 1)}).empty());

  // Filters outside the scope, and bad input, are refused with the field named.
  auto refused = admin::list_quarantine({cfg, c, pm}, {.domain = "a.example"});
  REQUIRE(!refused);
  CHECK(refused.failure().out_of_scope);
  CHECK(admin::category_info(refused.failure().category).http_status == 404);
  auto bad = admin::list_quarantine({cfg, c, acme}, {.since = "yesterday-ish"});
  REQUIRE(!bad);
  CHECK(bad.failure().category == admin::Category::kUsage);
  CHECK(bad.failure().field == "since");
  CHECK(admin::list_quarantine({cfg, c, acme}, {.recipient = "no at sign"}).failure().field == "recipient");

  // Show: the owner's tenant sees it with its preview; any other is not found.
  auto shown = admin::show_quarantined({cfg, c, globex}, "0g1.s1");
  REQUIRE(shown);
  CHECK(shown->preview.text.find("<script>") != std::string::npos);  // the text as sent; front ends escape it
  nlohmann::ordered_json j = admin::shown_json(*shown);
  CHECK(j["subject"] == "globex <b>mail</b>");
  CHECK(j.contains("headers"));
  for (const auto* p : {&acme, &pm, &user}) {
    auto other = admin::show_quarantined({cfg, c, *p}, "0g1.s1");
    REQUIRE(!other);
    CHECK(other.failure().category == admin::Category::kNotFound);
    CHECK(other.failure().out_of_scope);
  }
  CHECK(admin::show_quarantined({cfg, c, pm}, "0a1.s1").failure().out_of_scope);
  CHECK(!admin::show_quarantined({cfg, c, op}, "0ff.s1").failure().out_of_scope);  // operators: plainly missing
  CHECK(admin::show_quarantined({cfg, c, op}, "not/an/id").failure().field == "id");

  // Acting on another tenant's message changes nothing.
  auto del = admin::delete_quarantined({cfg, c, acme}, {.id = "0g1.s1"});
  REQUIRE(!del);
  CHECK(del.failure().out_of_scope);
  auto rel = admin::release_quarantined({cfg, c, user}, {.id = "0a2.s1"});
  REQUIRE(!rel);
  CHECK(rel.failure().out_of_scope);
  // A user may not put a sender on the domain's allow list (checked before anything is written).
  auto allow = admin::release_quarantined({cfg, c, user}, {.id = "0a1.s1", .allow_sender = true});
  REQUIRE(!allow);
  CHECK(allow.failure().category == admin::Category::kNotPermitted);
  // A named recipient outside the message's visible ones.
  auto wrong = admin::delete_quarantined({cfg, c, acme}, {.id = "0a1.s1", .recipients = {"bob@a.example"}});
  REQUIRE(!wrong);
  CHECK(wrong.failure().field == "recipients");
  CHECK(ids(op) == V{"0a1.s1", "0a2.s1", "0b1.s1", "0g1.s1"});

  // The owner deletes: gone for everyone, with the tracking event.
  auto ok = admin::delete_quarantined({cfg, c, user}, {.id = "0b1.s1"});
  REQUIRE(ok);
  CHECK(ok->recipients == V{"alias@b.example"});
  CHECK(ok->warning.empty());
  CHECK(ids(op) == V{"0a1.s1", "0a2.s1", "0g1.s1"});
}

namespace {

// A digest link's token as the digest would carry it.
std::string link_token(ConfigStore& c, const std::string& recipient, const std::string& id, digest::Action a,
                       int64_t expires) {
  auto key = digest::signing_key(c, kT0);
  REQUIRE(key.ok());
  auto t = digest::sign(*key, {recipient, id, a, expires, {}});
  REQUIRE(t.ok());
  return *t;
}

admin::LinkProblem problem_of(const admin::LinkOutcome<admin::DigestLink>& r) {
  REQUIRE(std::holds_alternative<admin::LinkRefusal>(r));
  return std::get<admin::LinkRefusal>(r).problem;
}

}  // namespace

TEST_CASE("digest links: checked before anything, acting once as digest:<recipient> on the recipient's addresses") {
  TempDir dir;
  Config cfg;
  cfg.state_dir = dir.path();
  auto cs = ConfigStore::open(dir.path());
  REQUIRE(cs.ok());
  ConfigStore& c = **cs;
  tenants(c, "anna@a.example", {"alias@b.example", "spy@g.example"});
  {
    auto spool = Spool::open(dir.path(), 1);
    REQUIRE(spool.ok());
    // Held for anna, her shadow and a colleague: a link acts on anna's two only.
    put_held(**spool,
             held_envelope("0a1.s1", {"anna@a.example", "alias@b.example", "bob@a.example"},
                           {"anna@a.example", "alias@b.example", "bob@a.example"}, kT0, "for <b>anna</b>"),
             stored_message("for <b>anna</b>", "hello"));
    put_held(**spool, held_envelope("0g1.s1", {"spy@g.example"}, {"spy@g.example"}, kT0 + 1, "globex"),
             stored_message("globex", "hello"));
  }
  const int64_t now = kT0 + kDay, expires = kT0 + 30 * kDay;
  using digest::Action;
  std::string del = link_token(c, "anna@a.example", "0a1.s1", Action::kDelete, expires);

  auto seen = admin::inspect_digest_link(cfg, c, "delete", del, now);
  REQUIRE(std::holds_alternative<admin::DigestLink>(seen));
  const auto& link = std::get<admin::DigestLink>(seen);
  CHECK(link.principal.name == "digest:anna@a.example");
  CHECK(link.principal.role == Role::kUser);
  CHECK(link.held.visible == std::vector<std::string>{"anna@a.example", "alias@b.example"});
  CHECK(link.held.record.envelope.subject == "for <b>anna</b>");

  // Every refusal, each before anything is written.
  std::string altered = del;
  altered[altered.size() / 3] = altered[altered.size() / 3] == 'A' ? 'B' : 'A';
  CHECK(problem_of(admin::inspect_digest_link(cfg, c, "delete", altered, now)) == admin::LinkProblem::kForged);
  CHECK(problem_of(admin::inspect_digest_link(cfg, c, "delete", "junk", now)) == admin::LinkProblem::kInvalid);
  CHECK(problem_of(admin::inspect_digest_link(cfg, c, "purge", del, now)) == admin::LinkProblem::kInvalid);
  CHECK(problem_of(admin::inspect_digest_link(cfg, c, "release", del, now)) == admin::LinkProblem::kWrongAction);
  CHECK(problem_of(admin::inspect_digest_link(cfg, c, "delete", del, expires)) == admin::LinkProblem::kExpired);
  auto allow = admin::inspect_digest_link(cfg, c, "release_allow",
                                          link_token(c, "anna@a.example", "0a1.s1", Action::kReleaseAllow, expires), now);
  CHECK(problem_of(allow) == admin::LinkProblem::kNotPermitted);
  CHECK(std::get<admin::LinkRefusal>(allow).failure.category == admin::Category::kNotPermitted);
  // A shadow in another customer's domain is not anna's, nor is a message
  // held only for a colleague.
  CHECK(problem_of(admin::inspect_digest_link(
            cfg, c, "delete", link_token(c, "anna@a.example", "0g1.s1", Action::kDelete, expires), now)) ==
        admin::LinkProblem::kGone);
  CHECK(problem_of(admin::inspect_digest_link(
            cfg, c, "delete", link_token(c, "alias@b.example", "0a1.s1", Action::kDelete, expires), now)) ==
        admin::LinkProblem::kGone);  // a shadow has no digest (and no links) of its own
  auto refused = admin::follow_digest_link(cfg, c, "delete", altered, now);
  REQUIRE(std::holds_alternative<admin::LinkRefusal>(refused));
  CHECK(std::get<admin::LinkRefusal>(refused).failure.category == admin::Category::kUsage);
  CHECK(std::get<admin::LinkRefusal>(refused).failure.field == "token");

  // The link acts on anna's addresses only; bob's copy stays held.
  auto done = admin::follow_digest_link(cfg, c, "delete", del, now);
  REQUIRE(std::holds_alternative<admin::LinkDone>(done));
  REQUIRE(std::get<admin::LinkDone>(done).deleted);
  CHECK(std::get<admin::LinkDone>(done).deleted->recipients ==
        std::vector<std::string>{"anna@a.example", "alias@b.example"});
  {
    auto spool = Spool::open(dir.path(), 1);
    REQUIRE(spool.ok());
    auto r = quarantine_get(**spool, "0a1.s1");
    REQUIRE(r.ok());
    REQUIRE(r->has_value());
    CHECK((*r)->held() == std::vector<std::string>{"bob@a.example"});
  }
  auto audit = c.audit();
  REQUIRE(audit.ok());
  REQUIRE(!audit->empty());
  CHECK(audit->back().principal == "digest:anna@a.example");
  CHECK(audit->back().action == "quarantine.delete");

  // Once: the same link again is used (GET and POST), the release link of
  // the same message finds nothing left for anna.
  CHECK(problem_of(admin::inspect_digest_link(cfg, c, "delete", del, now + 1)) == admin::LinkProblem::kUsed);
  auto again = admin::follow_digest_link(cfg, c, "delete", del, now + 1);
  REQUIRE(std::holds_alternative<admin::LinkRefusal>(again));
  CHECK(std::get<admin::LinkRefusal>(again).problem == admin::LinkProblem::kUsed);
  CHECK(std::get<admin::LinkRefusal>(again).failure.category == admin::Category::kConflict);
  CHECK(problem_of(admin::inspect_digest_link(
            cfg, c, "release", link_token(c, "anna@a.example", "0a1.s1", Action::kRelease, expires), now + 1)) ==
        admin::LinkProblem::kGone);
}

TEST_CASE("digest links: the user's addresses are one rule for the console scope and the digest") {
  TempDir dir;
  auto cs = ConfigStore::open(dir.path());
  REQUIRE(cs.ok());
  ConfigStore& c = **cs;
  tenants(c, "Anna@a.example", {"alias@b.example", "spy@g.example", "ALIAS@b.example", "nobody@unknown.example"});
  auto u = c.user("anna");
  REQUIRE(u.ok());
  auto addresses = digest::user_addresses(c, **u);
  REQUIRE(addresses.ok());
  CHECK(*addresses == std::vector<std::string>{"anna@a.example", "alias@b.example"});
  auto scope = digest::recipient_scope(c, "anna@a.example");
  REQUIRE(scope.ok());
  CHECK(scope->addresses == *addresses);
  auto console_scope = admin::QuarantineScope::of(c, {"anna", Role::kUser, "acme", ""});
  REQUIRE(console_scope.ok());
  CHECK(std::vector<std::string>(console_scope->addresses().begin(), console_scope->addresses().end()) ==
        std::vector<std::string>{"alias@b.example", "anna@a.example"});
  // A user without a customer sees nothing (no domain is theirs).
  User lone;
  lone.name = "lone";
  lone.role = Role::kUser;
  lone.address = "lone@a.example";
  REQUIRE(*c.add_user(lone));
  auto none = digest::user_addresses(c, lone);
  REQUIRE(none.ok());
  CHECK(none->empty());
}

namespace {

// Every page of `f` for `p`, `limit` at a time, newest first; checks each
// page's size and that only the last has no `next`.
std::vector<std::string> all_pages(const admin::Actor& a, const admin::QuarantineFilter& f, size_t limit,
                                   size_t* pages = nullptr) {
  std::vector<std::string> out;
  std::string before;
  for (size_t n = 0; n < 1000; ++n) {
    auto page = admin::quarantine_page(a, f, {std::to_string(limit), before});
    REQUIRE(page);
    for (const auto& h : page->rows) out.push_back(h.record.envelope.id);
    if (pages) *pages = n + 1;
    if (page->next.empty()) {
      CHECK(page->rows.size() <= limit);
      return out;
    }
    CHECK(page->rows.size() == limit);
    before = page->next;
  }
  FAIL("the pages never end");
  return out;
}

std::vector<std::string> newest_first(const admin::Outcome<std::vector<admin::HeldMessage>>& rows) {
  REQUIRE(rows);
  std::vector<std::string> out;
  for (const auto& h : *rows) out.insert(out.begin(), h.record.envelope.id);
  return out;
}

}  // namespace

TEST_CASE("quarantine: the newest-first walk merges prefixes, starts before a position and stops when told") {
  TempDir dir;
  auto spool = Spool::open(dir.path(), 0);
  REQUIRE(spool.ok());
  Spool& s = **spool;
  // Two at the same time (the id breaks the tie), one held for two watched recipients.
  put_held(s, held_envelope("01.s0", {"a@x.example"}, {"a@x.example"}, kT0), stored_message("1", "x"));
  put_held(s, held_envelope("02.s0", {"a@x.example", "b@x.example"}, {"a@x.example", "b@x.example"}, kT0 + 5),
           stored_message("2", "x"));
  put_held(s, held_envelope("03.s0", {"b@x.example"}, {"b@x.example"}, kT0 + 5), stored_message("3", "x"));
  put_held(s, held_envelope("04.s0", {"c@y.example"}, {"c@y.example"}, kT0 + 9), stored_message("4", "x"));
  put_held(s, held_envelope("05.s0", {"b@x.example"}, {"b@x.example"}, kT0 + 12), stored_message("5", "x"));
  auto walk = [&](const QuarantineQuery& q, std::optional<QuarantinePosition> before = {}, size_t stop = 100) {
    std::vector<std::string> out;
    REQUIRE(quarantine_walk_newest(s, q, before, [&](QuarantineRecord& r) {
              out.push_back(r.envelope.id);
              return out.size() < stop;
            }).ok());
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(walk({}) == V{"05.s0", "04.s0", "03.s0", "02.s0", "01.s0"});
  QuarantineQuery two;
  two.recipients = {"A@x.example", "b@x.example"};
  CHECK(walk(two) == V{"05.s0", "03.s0", "02.s0", "01.s0"});  // 02 once, though under both
  CHECK(walk(two, QuarantinePosition{kT0 + 5, "03.s0"}) == V{"02.s0", "01.s0"});
  CHECK(walk(two, QuarantinePosition{kT0 + 5, "02.s0"}) == V{"01.s0"});
  CHECK(walk(two, QuarantinePosition{kT0 + 5, "zz"}) == V{"03.s0", "02.s0", "01.s0"});
  CHECK(walk(two, QuarantinePosition{kT0, "01.s0"}).empty());
  QuarantineQuery window;
  window.since_ms = kT0 + 5;
  window.until_ms = kT0 + 12;
  CHECK(walk(window) == V{"04.s0", "03.s0", "02.s0"});
  CHECK(walk(window, QuarantinePosition{kT0 + 100, "x"}) == V{"04.s0", "03.s0", "02.s0"});
  CHECK(walk(window, QuarantinePosition{kT0 + 9, "04.s0"}) == V{"03.s0", "02.s0"});
  QuarantineQuery dom;
  dom.domains = {"y.example", "X.example"};
  CHECK(walk(dom) == V{"05.s0", "04.s0", "03.s0", "02.s0", "01.s0"});
  CHECK(walk(dom, {}, 2) == V{"05.s0", "04.s0"});  // asked no further
  QuarantineQuery none;
  none.recipients = {"nobody@x.example"};
  CHECK(walk(none).empty());
  QuarantineQuery empty_window;
  empty_window.since_ms = kT0 + 9;
  empty_window.until_ms = kT0 + 9;
  CHECK(walk(empty_window).empty());

  // Text: the index entries carry it; entries without it (written before
  // they did) are checked against the record instead, with the same answers.
  QuarantineQuery text;
  text.text = "b@x.exam";
  QuarantineQuery text_dom = dom;
  text_dom.text = "<03.s0@";
  QuarantineQuery none_text;
  none_text.text = "nothing like this";
  for (int old_entries = 0; old_entries < 2; ++old_entries) {
    CAPTURE(old_entries);
    CHECK(walk(text) == V{"05.s0", "03.s0", "02.s0"});
    CHECK(walk(text, QuarantinePosition{kT0 + 5, "03.s0"}) == V{"02.s0"});
    CHECK(walk(text_dom) == V{"03.s0"});
    CHECK(walk(none_text).empty());
    CHECK(ids_of(quarantine_list(s, text)) == V{"02.s0", "03.s0", "05.s0"});
    auto txn = Txn::begin(s.env(), false);
    REQUIRE(txn.ok());
    std::vector<std::string> keys;
    {
      Cursor cur(*txn, s.dbs().qindex);
      for (bool ok = cur.seek(""); ok; ok = cur.next()) {
        bool has_text = cur.value().find("b@x.example") != std::string_view::npos;
        bool for_b = cur.key().find("02.s0") != std::string_view::npos ||
                     cur.key().find("03.s0") != std::string_view::npos ||
                     cur.key().find("05.s0") != std::string_view::npos;
        if (!old_entries) CHECK(has_text == for_b);
        keys.emplace_back(cur.key());
      }
    }
    for (const auto& k : keys) REQUIRE(txn->put(s.dbs().qindex, k, "").ok());
    REQUIRE(txn->commit().ok());
  }
}

TEST_CASE("quarantine pages: no duplicates or gaps across pages and shards, filters hold on every page") {
  TempDir dir;
  Config cfg;
  cfg.state_dir = dir.path();
  auto cs = ConfigStore::open(dir.path());
  REQUIRE(cs.ok());
  ConfigStore& c = **cs;
  tenants(c, "anna@a.example", {"alias@b.example"});
  // 90 messages over two shards, many sharing a received time, for acme's
  // and globex's addresses; every third says "invoice".
  const char* rcpts[] = {"anna@a.example", "bob@a.example", "alias@b.example", "x@g.example"};
  for (unsigned shard : {0u, 1u}) {
    auto spool = Spool::open(dir.path(), shard);
    REQUIRE(spool.ok());
    for (int i = 0; i < 45; ++i) {
      std::string id = fmt::format("{:02x}{}.s{}", i, shard ? "b" : "a", shard);
      std::string subject = i % 3 == 0 ? fmt::format("invoice {}", i) : fmt::format("pills {}", i);
      std::vector<std::string> to{rcpts[i % 4]};
      if (i % 5 == 0) to.push_back(rcpts[(i + 1) % 4]);
      put_held(**spool, held_envelope(id, to, to, kT0 + (i / 4) * 1000 + shard, subject), stored_message(subject, "x"));
    }
  }
  admin::Principal op;
  admin::Principal acme{"acme-admin", Role::kCustomerAdmin, "acme", ""};
  admin::Principal user{"anna", Role::kUser, "acme", ""};
  admin::Principal globex{"globex-admin", Role::kCustomerAdmin, "globex", ""};
  struct Case {
    const admin::Principal* p;
    admin::QuarantineFilter f;
  };
  const std::string since = "@" + std::to_string(kT0 / 1000 + 3), until = "@" + std::to_string(kT0 / 1000 + 9);
  std::vector<Case> cases{{&op, {}},
                          {&acme, {}},
                          {&user, {}},
                          {&globex, {}},
                          {&acme, {.search = "INVOICE"}},
                          {&acme, {.domain = "b.example"}},
                          {&acme, {.recipient = "bob@a.example"}},
                          {&op, {.since = since, .until = until}},
                          {&user, {.search = "invoice", .since = since}}};
  for (const auto& k : cases) {
    const admin::Actor a{cfg, c, *k.p};
    auto whole = newest_first(admin::list_quarantine(a, k.f));
    REQUIRE(!whole.empty());
    for (size_t limit : {1u, 4u, 7u, 1000u}) {
      CAPTURE(k.p->name);
      CAPTURE(k.f.search);
      CAPTURE(limit);
      size_t pages = 0;
      CHECK(all_pages(a, k.f, limit, &pages) == whole);
      CHECK(pages == std::max<size_t>(1, (whole.size() + limit - 1) / limit));
    }
  }
  // The op sees all 90; pages of 30 end with no `next` on the third.
  CHECK(all_pages({cfg, c, op}, {}, 30).size() == 90);
  auto first = admin::quarantine_page({cfg, c, op}, {}, {});
  REQUIRE(first);
  CHECK(first->rows.size() == 90);  // fewer than the default page
  CHECK(first->next.empty());
  // A cursor from one search used in another still only returns what matches.
  auto acme_page = admin::quarantine_page({cfg, c, acme}, {}, {"5", ""});
  REQUIRE(acme_page);
  auto g = admin::quarantine_page({cfg, c, globex}, {}, {"1000", acme_page->next});
  REQUIRE(g);
  for (const auto& h : g->rows) CHECK(h.visible == std::vector<std::string>{"x@g.example"});
}

TEST_CASE("quarantine pages: a bad limit or cursor is usage naming its field") {
  TempDir dir;
  Config cfg;
  cfg.state_dir = dir.path();
  auto cs = ConfigStore::open(dir.path());
  REQUIRE(cs.ok());
  admin::Principal op;
  const admin::Actor a{cfg, **cs, op};
  for (const char* limit : {"0", "1001", "-1", "ten", "1e3", "01", " 5", "99999999999999999999"}) {
    auto r = admin::quarantine_page(a, {}, {limit, ""});
    REQUIRE(!r);
    CHECK(r.failure().category == admin::Category::kUsage);
    CHECK(r.failure().field == "limit");
  }
  for (const char* before : {"x", "123", "-0a.s0", "12-", "12-not/an/id", "12x-0a.s0", "1234567890123456789012-0a.s0",
                             "12-0a"}) {
    CAPTURE(before);
    auto r = admin::quarantine_page(a, {}, {"", before});
    REQUIRE(!r);
    CHECK(r.failure().category == admin::Category::kUsage);
    CHECK(r.failure().field == "before");
  }
  CHECK(admin::quarantine_page(a, {}, {"1000", "1780000000000-0a.s1"}));
  CHECK(admin::quarantine_page(a, {.since = "soon"}, {}).failure().field == "since");
  auto cursor = admin::parse_quarantine_cursor("1780000000123-0a-r1.s1");
  REQUIRE(cursor);
  CHECK(cursor->received_ms == 1780000000123);
  CHECK(cursor->id == "0a-r1.s1");
}
