// Store layer: envelope and queue-entry records, the chunked spool and the
// config environment (including a shard-style reader seeing console writes).
#include <doctest.h>

#include "temp_dir.hpp"
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "mxguard/store/config_store.hpp"
#include "mxguard/store/envelope.hpp"
#include "mxguard/store/spool.hpp"

using namespace mxguard::store;

namespace {

// A fresh directory under /tmp, removed with everything in it at scope exit.
using mxguard::testing::TempDir;

Envelope sample_envelope(std::string id) {
  Envelope e;
  e.id = std::move(id);
  e.sender = "alice@example.org";
  e.recipients = {"bob@example.com", "carol@example.com"};
  e.client_ip = "2001:db8::25";
  e.client_port = 50123;
  e.helo = "mail.example.org";
  e.tls = "TLSv1.3 TLS_AES_256_GCM_SHA384";
  e.received_ms = 1'714'560'000'123;
  e.size = 1234;
  e.subject = std::string("Hello \xff\x00 world", 14);  // raw header bytes, not text
  e.message_id = "<abc@example.org>";
  e.smtputf8 = true;
  e.body_8bit = false;
  return e;
}

void check_same(const Envelope& a, const Envelope& b) {
  CHECK(a.id == b.id);
  CHECK(a.sender == b.sender);
  CHECK(a.recipients == b.recipients);
  CHECK(a.client_ip == b.client_ip);
  CHECK(a.client_port == b.client_port);
  CHECK(a.helo == b.helo);
  CHECK(a.tls == b.tls);
  CHECK(a.received_ms == b.received_ms);
  CHECK(a.size == b.size);
  CHECK(a.subject == b.subject);
  CHECK(a.message_id == b.message_id);
  CHECK(a.smtputf8 == b.smtputf8);
  CHECK(a.body_8bit == b.body_8bit);
}

// Counts the body chunk keys of one message straight from the bodies table.
size_t chunk_count(const Spool& spool, const std::string& id) {
  auto txn = Txn::begin(spool.env(), true);
  REQUIRE(txn.ok());
  std::string prefix = id + "#";
  size_t n = 0;
  Cursor cur(*txn, spool.bodies_dbi());
  for (bool ok = cur.seek(prefix); ok && cur.key().substr(0, prefix.size()) == prefix; ok = cur.next()) ++n;
  return n;
}

// A body whose bytes differ at every offset, so a misplaced chunk shows.
std::string patterned_body(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
  return s;
}

Domain sample_domain(std::string name, std::string customer) {
  Domain d;
  d.name = std::move(name);
  d.customer = std::move(customer);
  d.verify_token = "mxg-0123456789abcdefghijABCDEFGHIJ01";
  d.backend_host = "2001:db8::1";
  d.backend_port = 2525;
  d.recipients_mode = "callout";
  d.tls_policy = "encrypt";
  d.trust = "auth";
  d.auth_user = "relay";
  d.created_ms = 1'700'000'000'000;
  return d;
}

}  // namespace

TEST_CASE("store: envelope round trip") {
  Envelope e = sample_envelope("0190f3c2a1b2c3.s1");
  auto back = decode_envelope(encode_envelope(e));
  REQUIRE(back.ok());
  check_same(e, *back);

  // The null reverse-path, no recipients and the other flag combination.
  Envelope bare;
  bare.id = "x.s0";
  bare.body_8bit = true;
  auto back2 = decode_envelope(encode_envelope(bare));
  REQUIRE(back2.ok());
  check_same(bare, *back2);
}

TEST_CASE("store: corrupt, truncated and wrong-version envelopes are rejected") {
  const std::string good = encode_envelope(sample_envelope("0190f3c2a1b2c3.s1"));
  CHECK_FALSE(decode_envelope("").ok());
  for (size_t len = 1; len < good.size(); ++len) {
    CAPTURE(len);
    CHECK_FALSE(decode_envelope(std::string_view(good).substr(0, len)).ok());
  }
  CHECK_FALSE(decode_envelope(good + "x").ok());

  std::string wrong_version = good;
  wrong_version[0] = static_cast<char>(kEnvelopeVersion + 1);
  CHECK_FALSE(decode_envelope(wrong_version).ok());
  wrong_version[0] = 0;
  CHECK_FALSE(decode_envelope(wrong_version).ok());

  // A length field far beyond the record must not be trusted.
  std::string huge_len = good;
  huge_len[8] = static_cast<char>(0x7f);
  CHECK_FALSE(decode_envelope(huge_len).ok());
}

TEST_CASE("store: message ids name their shard") {
  CHECK(shard_of_message_id("0190f3c2a1b2c3.s1") == 1);
  CHECK(shard_of_message_id("0190f3c2a1b2c3.s17") == 17);
  CHECK(shard_of_message_id("a.s1.s0") == 0);
  CHECK(shard_of_message_id("0190f3c2a1b2c3") == -1);
  CHECK(shard_of_message_id("0190f3c2a1b2c3.s") == -1);
  CHECK(shard_of_message_id("0190f3c2a1b2c3.s1x") == -1);
  CHECK(shard_of_message_id("") == -1);
}

TEST_CASE("store: queue entry round trip and rejects") {
  QueueEntry q;
  q.state = QueueState::kDeferred;
  q.next_attempt_ms = 1'714'560'900'000;
  q.attempts = 7;
  auto back = decode_queue_entry(encode_queue_entry(q));
  REQUIRE(back.ok());
  CHECK(back->state == QueueState::kDeferred);
  CHECK(back->next_attempt_ms == q.next_attempt_ms);
  CHECK(back->attempts == 7);

  const std::string good = encode_queue_entry(q);
  CHECK_FALSE(decode_queue_entry("").ok());
  CHECK_FALSE(decode_queue_entry(good.substr(0, good.size() - 1)).ok());
  CHECK_FALSE(decode_queue_entry(good + "x").ok());
  std::string bad_version = good;
  bad_version[0] = static_cast<char>(kQueueEntryVersion + 1);
  CHECK_FALSE(decode_queue_entry(bad_version).ok());
  std::string bad_state = good;
  bad_state[1] = 9;
  CHECK_FALSE(decode_queue_entry(bad_state).ok());

  // Per-recipient state survives; a version 1 entry (no recipients) still decodes.
  q.recipients = {{"a@x.example", 451, "451 4.2.0 try later"}, {"b@x.example", 0, ""}};
  q.bounce_requested = true;
  auto two = decode_queue_entry(encode_queue_entry(q));
  REQUIRE(two.ok());
  REQUIRE(two->recipients.size() == 2);
  CHECK(two->recipients[0].address == "a@x.example");
  CHECK(two->recipients[0].last_code == 451);
  CHECK(two->recipients[0].last_error == "451 4.2.0 try later");
  CHECK(two->bounce_requested);
  std::string v1 = encode_queue_entry(QueueEntry{}).substr(0, 14);
  v1[0] = 1;
  auto old = decode_queue_entry(v1);
  REQUIRE(old.ok());
  CHECK(old->recipients.empty());
  const std::string full = encode_queue_entry(q);
  for (size_t cut = 14; cut < full.size(); ++cut) CHECK_FALSE(decode_queue_entry(full.substr(0, cut)).ok());
}

// The storage writer posts a 250 only once its commit is durable: under
// deferred meta sync that is when a later commit moved the txnid (its data
// sync wrote the earlier meta page) or after sync(). A commit that changes
// nothing must not move it, else a batch would be posted unsynced.
TEST_CASE("store: root opening an env under another user's state dir gives the files to that user") {
  if (geteuid() != 0) return;  // needs root (CI runs the unit tests as root)
  TempDir dir;
  const uid_t uid = 65534;
  const gid_t gid = 65534;
  REQUIRE(chown(dir.path().c_str(), uid, gid) == 0);
  {
    auto env = Env::open(dir.path() + "/config", 2, size_t{1} << 20);
    REQUIRE(env.ok());
  }
  for (const char* name : {"/config", "/config/data.mdb", "/config/lock.mdb"}) {
    struct stat st {};
    REQUIRE(stat((dir.path() + name).c_str(), &st) == 0);
    CHECK(st.st_uid == uid);
    CHECK(st.st_gid == gid);
  }
  // Under a root-owned state directory nothing changes hands.
  TempDir own;
  REQUIRE(Env::open(own.path() + "/config", 2, size_t{1} << 20).ok());
  struct stat st {};
  REQUIRE(stat((own.path() + "/config/data.mdb").c_str(), &st) == 0);
  CHECK(st.st_uid == 0);
}

TEST_CASE("store: deferred meta sync moves the txnid only on real commits") {
  TempDir dir;
  auto spool = Spool::open(dir.path(), 4, /*deferred_meta_sync=*/true);
  REQUIRE(spool.ok());
  const uint64_t t0 = (*spool)->last_txnid();
  Envelope e = sample_envelope("m1.s4");
  REQUIRE((*spool)->commit({{&e, "body"}}, {}, {}, {}).ok());
  const uint64_t t1 = (*spool)->last_txnid();
  CHECK(t1 > t0);
  REQUIRE((*spool)->commit({}, {}, {}, {}).ok());
  CHECK((*spool)->last_txnid() == t1);
  REQUIRE((*spool)->sync().ok());
  CHECK((*spool)->last_txnid() == t1);
  DeliveryUpdate u{"m1.s4", e.recipients, {}, 0, true};
  REQUIRE((*spool)->commit({}, {}, {u}, {}).ok());
  CHECK((*spool)->last_txnid() > t1);
  CHECK_FALSE((*spool)->envelope("m1.s4")->has_value());
}

TEST_CASE("store: delivery results update the queue and the due index") {
  TempDir dir;
  auto spool = Spool::open(dir.path(), 1);
  REQUIRE(spool.ok());
  Envelope e = sample_envelope("d1.s1");
  e.recipients = {"a@x.example", "b@x.example", "c@x.example"};
  e.received_ms = 1000;
  Envelope f = sample_envelope("d2.s1");
  f.received_ms = 5000;
  REQUIRE((*spool)->store_batch({{&e, "one"}, {&f, "two"}}).ok());

  CHECK(*(*spool)->due(999, 10) == std::vector<std::string>{});
  CHECK(*(*spool)->due(1000, 10) == std::vector<std::string>{"d1.s1"});
  CHECK(*(*spool)->due(9000, 10) == std::vector<std::string>{"d1.s1", "d2.s1"});
  CHECK(*(*spool)->due(9000, 1) == std::vector<std::string>{"d1.s1"});
  CHECK(**(*spool)->next_due() == 1000);

  // a delivered, b deferred, c untouched: two left, due later.
  DeliveryUpdate u{"d1.s1", {"a@x.example"}, {{"b@x.example", 451, "451 4.3.0 busy"}}, 20'000, true};
  REQUIRE((*spool)->apply({u}, {}).ok());
  auto q = (*spool)->queue_entry("d1.s1");
  REQUIRE(q->has_value());
  CHECK((*q)->attempts == 1);
  CHECK((*q)->state == QueueState::kDeferred);
  REQUIRE((*q)->recipients.size() == 2);
  CHECK((*q)->recipients[0].address == "b@x.example");
  CHECK((*q)->recipients[0].last_error == "451 4.3.0 busy");
  CHECK((*q)->recipients[1].address == "c@x.example");
  CHECK(*(*spool)->due(9000, 10) == std::vector<std::string>{"d2.s1"});
  CHECK(*(*spool)->due(20'000, 10) == std::vector<std::string>{"d2.s1", "d1.s1"});

  // The rest done, and a new message (a DSN) queued in the same commit:
  // nothing of d1 is kept.
  Envelope dsn = sample_envelope("d3.s1");
  dsn.sender = "";
  dsn.received_ms = 21'000;
  DeliveryUpdate last{"d1.s1", {"b@x.example", "c@x.example"}, {}, 0, true};
  REQUIRE((*spool)->apply({last}, {{dsn, "bounce"}}).ok());
  CHECK_FALSE((*spool)->envelope("d1.s1")->has_value());
  CHECK(chunk_count(**spool, "d1.s1") == 0);
  CHECK(*(*spool)->due(50'000, 10) == std::vector<std::string>{"d2.s1", "d3.s1"});
  CHECK(**(*spool)->read_message("d3.s1") == "bounce");

  // Console retry/bounce move the due key.
  REQUIRE(*(*spool)->reschedule("d3.s1", 100, true));
  CHECK(*(*spool)->due(100, 10) == std::vector<std::string>{"d3.s1"});
  CHECK((*(*spool)->queue_entry("d3.s1"))->bounce_requested);
  CHECK_FALSE(*(*spool)->reschedule("nope.s1", 100, false));
  REQUIRE(*(*spool)->remove("d3.s1"));
  CHECK(*(*spool)->due(50'000, 10) == std::vector<std::string>{"d2.s1"});
}

TEST_CASE("store: spool stores, reads and removes chunked messages") {
  TempDir dir;
  auto spool = Spool::open(dir.path(), 2);
  REQUIRE(spool.ok());

  const std::string big = patterned_body(3 * kBodyChunkSize + 17);  // four chunks
  const std::string exact = patterned_body(kBodyChunkSize);         // exactly one chunk
  const std::string small = std::string("Subject: hi\r\n\r\nbody\0with NUL\r\n", 31);
  const std::string empty;
  std::vector<Envelope> envs = {sample_envelope("a1.s2"), sample_envelope("a2.s2"), sample_envelope("a3.s2"),
                                sample_envelope("a4.s2")};
  const std::vector<const std::string*> bodies = {&big, &exact, &small, &empty};
  std::vector<Spool::Record> batch;
  for (size_t i = 0; i < envs.size(); ++i) batch.push_back({&envs[i], *bodies[i]});
  REQUIRE((*spool)->store_batch(batch).ok());

  CHECK(chunk_count(**spool, "a1.s2") == 4);
  CHECK(chunk_count(**spool, "a2.s2") == 1);
  CHECK(chunk_count(**spool, "a3.s2") == 1);
  CHECK(chunk_count(**spool, "a4.s2") == 1);
  for (size_t i = 0; i < envs.size(); ++i) {
    CAPTURE(envs[i].id);
    auto data = (*spool)->read_message(envs[i].id);
    REQUIRE(data.ok());
    REQUIRE(data->has_value());
    CHECK(**data == *bodies[i]);
    auto env = (*spool)->envelope(envs[i].id);
    REQUIRE(env.ok());
    REQUIRE(env->has_value());
    check_same(envs[i], **env);
    auto entry = (*spool)->queue_entry(envs[i].id);
    REQUIRE(entry.ok());
    REQUIRE(entry->has_value());
    CHECK((*entry)->state == QueueState::kQueued);
    CHECK((*entry)->next_attempt_ms == envs[i].received_ms);
  }

  std::vector<std::string> seen;
  REQUIRE((*spool)->for_each([&](const Envelope& e, const QueueEntry&) { seen.push_back(e.id); }).ok());
  CHECK(seen == std::vector<std::string>{"a1.s2", "a2.s2", "a3.s2", "a4.s2"});

  auto removed = (*spool)->remove("a1.s2");
  REQUIRE(removed.ok());
  CHECK(*removed);
  CHECK(chunk_count(**spool, "a1.s2") == 0);
  CHECK_FALSE((*spool)->envelope("a1.s2")->has_value());
  CHECK_FALSE((*spool)->queue_entry("a1.s2")->has_value());
  CHECK_FALSE((*spool)->read_message("a1.s2")->has_value());
  auto again = (*spool)->remove("a1.s2");
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
  // Neighbours are untouched.
  CHECK(*(*spool)->read_message("a2.s2").value() == exact);
}

TEST_CASE("store: a spool batch is all or nothing") {
  TempDir dir;
  auto spool = Spool::open(dir.path(), 0);
  REQUIRE(spool.ok());
  Envelope first = sample_envelope("b1.s0");
  REQUIRE((*spool)->store_batch({{&first, "one"}}).ok());

  // The duplicate id fails the batch, so the new message in it must not appear either.
  Envelope fresh = sample_envelope("b2.s0");
  Envelope dup = sample_envelope("b1.s0");
  CHECK_FALSE((*spool)->store_batch({{&fresh, "two"}, {&dup, "again"}}).ok());
  CHECK_FALSE((*spool)->envelope("b2.s0")->has_value());
  CHECK(chunk_count(**spool, "b2.s0") == 0);
  CHECK(*(*spool)->read_message("b1.s0").value() == "one");
}

TEST_CASE("store: existing_shards lists spool directories only") {
  TempDir dir;
  CHECK(Spool::existing_shards(dir.path()).empty());
  CHECK(Spool::existing_shards(dir.path() + "/missing").empty());
  REQUIRE(Spool::open(dir.path(), 3).ok());
  REQUIRE(Spool::open(dir.path(), 0).ok());
  std::filesystem::create_directory(dir.path() + "/spool-x");
  std::filesystem::create_directory(dir.path() + "/spool-");
  std::filesystem::create_directory(dir.path() + "/config");
  CHECK(Spool::existing_shards(dir.path()) == std::vector<unsigned>{0, 3});
}

TEST_CASE("store: config store customers and domains") {
  TempDir dir;
  auto store = ConfigStore::open(dir.path());
  REQUIRE(store.ok());
  ConfigStore& cs = **store;

  CHECK_FALSE(cs.customer("acme")->has_value());
  REQUIRE(cs.put_customer({"acme", 1}).ok());
  REQUIRE(cs.customer("acme")->has_value());
  CHECK((*cs.customer("acme"))->created_ms == 1);
  CHECK(*cs.add_customer({"beta", 2}) == true);
  CHECK(*cs.add_customer({"beta", 3}) == false);
  CHECK((*cs.customer("beta"))->created_ms == 2);
  REQUIRE(cs.customers().ok());
  CHECK(cs.customers()->size() == 2);

  Domain d = sample_domain("example.com", "acme");
  REQUIRE(cs.put_domain(d).ok());
  auto got = cs.domain("example.com");
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->customer == "acme");
  CHECK((*got)->status == DomainStatus::kPendingVerification);
  CHECK((*got)->verify_token == d.verify_token);
  CHECK((*got)->backend_host == "2001:db8::1");
  CHECK((*got)->backend_port == 2525);
  CHECK((*got)->recipients_mode == "callout");
  CHECK((*got)->tls_policy == "encrypt");
  CHECK((*got)->trust == "auth");
  CHECK((*got)->auth_user == "relay");
  CHECK((*got)->created_ms == d.created_ms);

  REQUIRE(cs.put_domain(sample_domain("example.net", "beta")).ok());
  auto all = cs.domains();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].name == "example.com");
  CHECK((*all)[1].name == "example.net");

  CHECK(*cs.remove_domain("example.com") == true);
  CHECK(*cs.remove_domain("example.com") == false);
  CHECK_FALSE(cs.domain("example.com")->has_value());
  CHECK(cs.domains()->size() == 1);
}

TEST_CASE("store: add_domain checks and writes in one transaction") {
  TempDir dir;
  auto store = ConfigStore::open(dir.path());
  REQUIRE(store.ok());
  ConfigStore& cs = **store;
  using Outcome = ConfigStore::AddOutcome;

  CHECK(*cs.add_domain(sample_domain("example.com", "acme"), false) == Outcome::kNoCustomer);
  CHECK_FALSE(cs.domain("example.com")->has_value());
  CHECK_FALSE(cs.customer("acme")->has_value());

  CHECK(*cs.add_domain(sample_domain("example.com", "acme"), true) == Outcome::kAddedWithCustomer);
  REQUIRE(cs.customer("acme")->has_value());
  CHECK(*cs.add_domain(sample_domain("example.org", "acme"), false) == Outcome::kAdded);

  // A taken name stays with its owner, and no customer is created on the way.
  CHECK(*cs.add_domain(sample_domain("example.com", "other"), true) == Outcome::kDomainExists);
  CHECK((*cs.domain("example.com"))->customer == "acme");
  CHECK_FALSE(cs.customer("other")->has_value());
}

TEST_CASE("store: config records reject bad versions and corruption") {
  Domain d = sample_domain("example.com", "acme");
  std::string good = encode_domain(d);
  REQUIRE(decode_domain(good).ok());
  CHECK_FALSE(decode_domain("").ok());
  std::string bad = good;
  bad[0] = static_cast<char>(kConfigRecordVersion + 1);
  CHECK_FALSE(decode_domain(bad).ok());
  CHECK_FALSE(decode_domain(good.substr(0, good.size() / 2)).ok());
  CHECK_FALSE(decode_domain(std::string(1, static_cast<char>(kConfigRecordVersion)) + "[1,2]").ok());
  CHECK_FALSE(decode_domain(std::string(1, static_cast<char>(kConfigRecordVersion)) +
                            R"({"name":"a.b","customer":"c","status":"bogus"})")
                  .ok());
  CHECK_FALSE(decode_customer(std::string(1, static_cast<char>(kConfigRecordVersion)) + "{}").ok());
  auto c = decode_customer(encode_customer({"acme", 5}));
  REQUIRE(c.ok());
  CHECK(c->name == "acme");
  CHECK(c->created_ms == 5);
}

TEST_CASE("store: a config reader sees later writes without a reload") {
  TempDir dir;
  auto store = ConfigStore::open(dir.path());
  REQUIRE(store.ok());
  ConfigReader reader(**store);

  auto before = reader.domain("example.com");
  REQUIRE(before.ok());
  CHECK_FALSE(before->has_value());

  Domain d = sample_domain("example.com", "acme");
  REQUIRE((*store)->put_domain(d).ok());
  auto pending = reader.domain("example.com");
  REQUIRE(pending.ok());
  REQUIRE(pending->has_value());
  CHECK((*pending)->status == DomainStatus::kPendingVerification);

  d.status = DomainStatus::kActive;
  REQUIRE((*store)->put_domain(d).ok());
  CHECK((*reader.domain("example.com"))->status == DomainStatus::kActive);

  d.status = DomainStatus::kSuspended;
  REQUIRE((*store)->put_domain(d).ok());
  CHECK((*reader.domain("example.com"))->status == DomainStatus::kSuspended);

  // The reader keeps decoded records; a changed record is decoded again, for
  // domain() as for rcpt_policy(), whichever read it first.
  d.backend_host = "mail2.example.com";
  d.recipients_mode = "list";
  REQUIRE((*store)->put_domain(d).ok());
  PolicyQuery q;
  q.rcpt_domain = "example.com";
  q.rcpt_local = "someone";
  auto p = reader.rcpt_policy(q);
  REQUIRE(p.ok());
  CHECK(p->list_mode);
  CHECK((*reader.domain("example.com"))->backend_host == "mail2.example.com");
  d.recipients_mode = "accept-all";
  REQUIRE((*store)->put_domain(d).ok());
  CHECK((*reader.domain("example.com"))->recipients_mode == "accept-all");
  CHECK_FALSE(reader.rcpt_policy(q)->list_mode);

  REQUIRE((*store)->remove_domain("example.com").ok());
  CHECK_FALSE(reader.domain("example.com")->has_value());
}

TEST_CASE("store: domain status names") {
  for (auto s : {DomainStatus::kPendingVerification, DomainStatus::kActive, DomainStatus::kSuspended})
    CHECK(domain_status_from_string(to_string(s)) == s);
  CHECK_FALSE(domain_status_from_string("Active").has_value());
}

TEST_CASE("store: version 1 envelopes (before allowlisted) still decode") {
  mxguard::store::Envelope e;
  e.id = "0000000000001.s0";
  e.sender = "a@b.example";
  e.recipients = {"r@example.com"};
  std::string v3 = mxguard::store::encode_envelope(e);
  // Version 2 is version 3 without the scan verdict (40 bytes when empty),
  // version 1 is version 2 without the trailing allow list.
  std::string v2 = v3.substr(0, v3.size() - 40);
  v2[0] = 2;
  auto d2 = mxguard::store::decode_envelope(v2);
  REQUIRE(d2.ok());
  CHECK_FALSE(d2->scanned);
  CHECK(d2->reasons.empty());
  std::string v1 = v2.substr(0, v2.size() - 8);
  v1[0] = 1;
  auto d = mxguard::store::decode_envelope(v1);
  REQUIRE(d.ok());
  CHECK(d->recipients == e.recipients);
  CHECK(d->allowlisted.empty());
  e.allowlisted = {"r@example.com", "*"};
  auto round = mxguard::store::decode_envelope(mxguard::store::encode_envelope(e));
  REQUIRE(round.ok());
  CHECK(round->allowlisted == e.allowlisted);
  e.scanned = true;
  e.score = 7.25;
  e.action = "quarantine";
  e.reasons = {"BAYES_99=5", "SUBJ_MONEY=2.25"};
  e.quarantined = {"r@example.com"};
  round = mxguard::store::decode_envelope(mxguard::store::encode_envelope(e));
  REQUIRE(round.ok());
  CHECK(round->scanned);
  CHECK(round->score == 7.25);
  CHECK(round->action == "quarantine");
  CHECK(round->reasons == e.reasons);
  CHECK(round->quarantined == e.quarantined);
}

TEST_CASE("store: allow and block lists and list-mode recipients in one policy snapshot") {
  using namespace mxguard::store;
  using mxguard::IpAddress;
  char tmpl[] = "/tmp/mxg-policy-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto cs = ConfigStore::open(dir);
  REQUIRE(cs.ok());
  ConfigStore& store = **cs;
  Domain d;
  d.name = "example.com";
  d.customer = "acme";
  d.status = DomainStatus::kActive;
  d.recipients_mode = "list";
  REQUIRE(store.put_domain(d).ok());
  CHECK(*store.add_recipient("example.com", "Alice"));
  CHECK_FALSE(*store.add_recipient("example.com", "alice"));
  CHECK(*store.import_recipients("example.com", {"bob", "carol", "bob"}) == 2);
  CHECK(store.recipients("example.com")->size() == 3);

  auto entry = [](std::string scope, ListAction a, ListKind k, std::string v) {
    return ListEntry{std::move(scope), a, k, *canonical_list_value(k, v), 0};
  };
  CHECK(*store.add_list_entry(entry("", ListAction::kBlock, ListKind::kClientIp, "192.0.2.0/24")));
  CHECK(*store.add_list_entry(entry("example.com", ListAction::kAllow, ListKind::kSenderDomain, "partner.example")));
  CHECK(*store.add_list_entry(entry("example.com", ListAction::kBlock, ListKind::kSender, "Spammer@Bad.example")));
  CHECK(store.list_entries("", true)->size() == 3);
  CHECK(store.list_entries("example.com", false)->size() == 2);

  ConfigReader reader(store);
  auto ask = [&](std::string_view local, std::string_view sender, std::string_view sdomain, const char* ip) {
    PolicyQuery q{"example.com", local, sender, sdomain, IpAddress::parse(ip)};
    return *reader.rcpt_policy(q);
  };
  RcptPolicy p = ask("ALICE", "x@y.example", "y.example", "198.51.100.1");
  CHECK(p.domain_found);
  CHECK(p.list_mode);
  CHECK(p.recipient_known);
  CHECK(p.lists == ListVerdict::kNone);
  CHECK_FALSE(ask("dave", "x@y.example", "y.example", "198.51.100.1").recipient_known);
  CHECK(ask("bob", "spammer@bad.example", "bad.example", "198.51.100.1").lists == ListVerdict::kBlock);
  CHECK(ask("bob", "a@mail.partner.example", "mail.partner.example", "198.51.100.1").lists == ListVerdict::kAllow);
  // The global IP block applies when the domain's own lists say nothing...
  CHECK(ask("bob", "a@y.example", "y.example", "192.0.2.77").lists == ListVerdict::kBlock);
  // ...and the domain's allow list overrides it.
  CHECK(ask("bob", "a@partner.example", "partner.example", "192.0.2.77").lists == ListVerdict::kAllow);
  PolicyQuery g{"", "", "", "", IpAddress::parse("192.0.2.1")};
  CHECK(*reader.global_policy(g) == ListVerdict::kBlock);
  CHECK(*store.remove_list_entry(entry("", ListAction::kBlock, ListKind::kClientIp, "192.0.2.9/24")));
  CHECK(*reader.global_policy(g) == ListVerdict::kNone);
  std::filesystem::remove_all(dir);
}

TEST_CASE("store: update_domain changes the current record in one transaction, or nothing") {
  using namespace mxguard::store;
  char tmpl[] = "/tmp/mxg-update-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto cs = ConfigStore::open(dir);
  REQUIRE(cs.ok());
  Domain d;
  d.name = "example.com";
  d.customer = "acme";
  REQUIRE((*cs)->put_domain(d).ok());
  auto up = (*cs)->update_domain("example.com", [](Domain& x) -> mxguard::Status {
    x.tls_policy = "encrypt";
    return {};
  });
  REQUIRE(up.ok());
  REQUIRE(up->has_value());
  CHECK((**up).tls_policy == "encrypt");
  CHECK((*(*cs)->domain("example.com"))->tls_policy == "encrypt");
  auto refused = (*cs)->update_domain("example.com", [](Domain& x) -> mxguard::Status {
    x.tls_policy = "none";
    return mxguard::Error{"no"};
  });
  CHECK_FALSE(refused.ok());
  CHECK((*(*cs)->domain("example.com"))->tls_policy == "encrypt");  // nothing written
  auto missing = (*cs)->update_domain("nosuch.example", [](Domain&) -> mxguard::Status { return {}; });
  REQUIRE(missing.ok());
  CHECK_FALSE(missing->has_value());
  std::filesystem::remove_all(dir);
}

TEST_CASE("store: a rollback goes back one activation, not to the next lower number") {
  using namespace mxguard::store;
  char tmpl[] = "/tmp/mxg-bundles-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto cs = ConfigStore::open(dir);
  REQUIRE(cs.ok());
  ConfigStore& s = **cs;
  auto active = [&] { return **s.active_bundle(); };
  auto rollback = [&]() -> std::optional<uint64_t> {
    auto target = s.rollback_target();
    REQUIRE(target.ok());
    auto done = s.rollback_bundle();
    REQUIRE(done.ok());
    CHECK(*done == *target);  // the console checks the bundle it names before switching
    return *done;
  };
  CHECK_FALSE(rollback().has_value());  // nothing stored
  REQUIRE(*s.add_bundle("factory", "{}") == 1);
  CHECK_FALSE(rollback().has_value());  // nothing before the first
  REQUIRE(*s.add_bundle("two", "{}") == 2);
  CHECK(rollback() == 1u);
  CHECK(active() == 1u);
  // Bundle 2 was rolled back: after 3, a rollback returns to 1, which was
  // active before 3, not to 2.
  REQUIRE(*s.add_bundle("three", "{}") == 3);
  CHECK(*s.rollback_target() == 1u);
  CHECK(rollback() == 1u);
  CHECK_FALSE(rollback().has_value());
  // Two pushes undo one at a time.
  REQUIRE(*s.add_bundle("four", "{}") == 4);
  REQUIRE(*s.add_bundle("five", "{}") == 5);
  CHECK(rollback() == 4u);
  CHECK(rollback() == 1u);
  CHECK(active() == 1u);
  // Pruned bundles are skipped: with room for two, pushing 6 and 7 drops
  // 1 to 5 (the history still names 1 and 4), so 7 goes back to 6 and no further.
  REQUIRE(*s.add_bundle("six", "{}", 2) == 6);
  REQUIRE(*s.add_bundle("seven", "{}", 2) == 7);
  CHECK(rollback() == 6u);
  CHECK_FALSE(rollback().has_value());
  CHECK(active() == 6u);
  // A used-up history is not a missing one: 8 is pushed and rolled back,
  // then 9 pushed with room for three (6 is pruned). 9 was pushed over 6,
  // which is gone, so there is nothing to go back to -- not 8, stored and
  // older, but rolled back already.
  REQUIRE(*s.add_bundle("eight", "{}") == 8);
  CHECK(rollback() == 6u);
  REQUIRE(*s.add_bundle("nine", "{}", 3) == 9);
  CHECK_FALSE(rollback().has_value());
  CHECK(active() == 9u);
  std::filesystem::remove_all(dir);
}

TEST_CASE("store: activate goes forward again; pruning keeps the protected; local generation; key times") {
  using namespace mxguard::store;
  char tmpl[] = "/tmp/mxg-activate-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto cs = ConfigStore::open(dir);
  REQUIRE(cs.ok());
  ConfigStore& s = **cs;
  REQUIRE(*s.add_bundle("factory", "{}") == 1);
  REQUIRE(*s.add_bundle("two", "{}") == 2);
  REQUIRE(**s.rollback_bundle() == 1u);
  CHECK_FALSE(*s.activate_bundle(9));  // not stored: nothing changes
  CHECK(**s.active_bundle() == 1u);
  REQUIRE(*s.activate_bundle(2));
  CHECK(**s.active_bundle() == 2u);
  CHECK(*s.rollback_target() == 1u);  // the activation is on the history like a push
  REQUIRE(*s.activate_bundle(2));     // already active: no new history entry
  REQUIRE(**s.rollback_bundle() == 1u);
  CHECK_FALSE(s.rollback_target()->has_value());

  // keep = 2 with bundle 1 protected: 3, 4, 5 pushed; 2 and 3 are pruned, 1 stays.
  auto st = s.store_bundle("three", "{}", 2, {1});
  REQUIRE(st.ok());
  CHECK(st->seq == 3);
  CHECK(st->pruned == std::vector<uint64_t>{});
  st = s.store_bundle("four", "{}", 2, {1});
  CHECK(st->pruned == std::vector<uint64_t>{2});
  st = s.store_bundle("five", "{}", 2, {1});
  CHECK(st->pruned == std::vector<uint64_t>{3});
  std::vector<uint64_t> left;
  auto stored = s.bundles();
  REQUIRE(stored.ok());
  for (const auto& r : *stored) left.push_back(r.seq);
  CHECK(left == std::vector<uint64_t>{1, 4, 5});
  CHECK(**s.active_bundle() == 5u);

  CHECK(*s.local_rules_generation() == 0u);
  CHECK(*s.bump_local_rules_generation() == 1u);
  CHECK(*s.bump_local_rules_generation() == 2u);
  CHECK(*s.local_rules_generation() == 2u);

  REQUIRE(*s.add_trusted_key("ops", "AAAA"));
  auto keys = s.trusted_key_records();
  REQUIRE(keys->size() == 1);
  CHECK((*keys)[0].name == "ops");
  CHECK((*keys)[0].key == "AAAA");
  CHECK((*keys)[0].added_ms > 1'700'000'000'000);
  CHECK((*s.trusted_keys())[0].second == "AAAA");  // the key alone, as before
  std::filesystem::remove_all(dir);
}

TEST_CASE("policy: the base local part is cut at the first delimiter character") {
  CHECK(base_local_part("bob+news", "+") == "bob");
  CHECK(base_local_part("bob+news+more", "+") == "bob");
  CHECK_FALSE(base_local_part("bob", "+").has_value());
  CHECK_FALSE(base_local_part("bob+news", "").has_value());     // no delimiter set
  CHECK_FALSE(base_local_part("+news", "+").has_value());       // nothing before it
  CHECK_FALSE(base_local_part("\"bob+news\"", "+").has_value());  // quoted: not a delimiter
  CHECK(base_local_part("bob-news+x", "+-") == "bob");          // whichever comes first
  CHECK(base_local_part("bob+news-x", "+-") == "bob");
  CHECK(base_local_part("bob.smith-x", "+-") == "bob.smith");
}

TEST_CASE("policy: recipient_delimiter values") {
  for (const char* ok : {"", "+", "-", "+-", "._", "#$&'", "=?^`", "{|}~", "/*"}) {
    CAPTURE(ok);
    CHECK(check_recipient_delimiter(ok).ok());
  }
  for (const char* bad : {"a", "Z", "0", "@", " ", "+ ", "\t", "+++", "+-_=/", "%", "!", "\"", "\\", "(", ",",
                          "\xc3\xa9", "<"}) {
    CAPTURE(bad);
    auto s = check_recipient_delimiter(bad);
    CHECK_FALSE(s.ok());
    CHECK(s.error().find("recipient_delimiter") != std::string::npos);
  }
}

TEST_CASE("store: list-mode lookups try the address, then its base at the domain's delimiter") {
  using mxguard::IpAddress;
  char tmpl[] = "/tmp/mxg-delim-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto cs = ConfigStore::open(dir);
  REQUIRE(cs.ok());
  ConfigStore& store = **cs;
  Domain d;
  d.name = "acme.test";
  d.customer = "acme";
  d.status = DomainStatus::kActive;
  d.recipients_mode = "list";
  CHECK(d.recipient_delimiter == "+");  // the default
  REQUIRE(store.put_domain(d).ok());
  // A delimiter character in the domain part means nothing.
  Domain dashed = d;
  dashed.name = "a-b.test";
  dashed.recipient_delimiter = "+-";
  REQUIRE(store.put_domain(dashed).ok());
  REQUIRE(*store.add_recipient("acme.test", "bob"));
  REQUIRE(*store.add_recipient("acme.test", "news+team"));
  REQUIRE(*store.add_recipient("a-b.test", "bob"));

  ConfigReader reader(store);
  auto ask = [&](std::string_view domain, std::string_view local) {
    PolicyQuery q{domain, local, "s@client.example", "client.example", IpAddress::parse("198.51.100.1")};
    return *reader.rcpt_policy(q);
  };
  RcptPolicy exact = ask("acme.test", "bob");
  CHECK(exact.recipient_known);
  CHECK(exact.base_local.empty());
  RcptPolicy cut = ask("acme.test", "Bob+News");
  CHECK(cut.recipient_known);
  CHECK(cut.base_local == "Bob");
  CHECK_FALSE(ask("acme.test", "alice+x").recipient_known);
  CHECK(ask("acme.test", "alice+x").base_local == "alice");
  CHECK(ask("acme.test", "news+team").recipient_known);  // listed with its delimiter: exact match first
  CHECK_FALSE(ask("acme.test", "bob-news").recipient_known);  // '-' is not this domain's delimiter
  CHECK(ask("a-b.test", "bob-news").recipient_known);
  CHECK(ask("a-b.test", "bob+news").recipient_known);
  CHECK_FALSE(ask("a-b.test", "b").recipient_known);
  CHECK_FALSE(ask("a-b.test", "bo").recipient_known);

  // No delimiter: only the exact address.
  REQUIRE(store.update_domain("acme.test", [](Domain& x) -> mxguard::Status {
                  x.recipient_delimiter = "";
                  return {};
                }).ok());
  CHECK_FALSE(ask("acme.test", "bob+news").recipient_known);
  CHECK(ask("acme.test", "bob+news").base_local.empty());
  CHECK(ask("acme.test", "bob").recipient_known);
  CHECK((*store.domain("acme.test"))->recipient_delimiter.empty());
  std::filesystem::remove_all(dir);
}

TEST_CASE("store: a domain record written before recipient_delimiter means '+'") {
  Domain d;
  d.name = "old.example";
  d.customer = "acme";
  d.recipient_delimiter = "-";
  std::string bytes = encode_domain(d);
  auto removed = bytes.find(",\"recipient_delimiter\":\"-\"");
  REQUIRE(removed != std::string::npos);
  bytes.erase(removed, std::string(",\"recipient_delimiter\":\"-\"").size());
  REQUIRE(bytes.find("recipient_delimiter") == std::string::npos);
  auto old = decode_domain(bytes);
  REQUIRE(old.ok());
  CHECK(old->recipient_delimiter == "+");
  auto now = decode_domain(encode_domain(d));
  REQUIRE(now.ok());
  CHECK(now->recipient_delimiter == "-");
}

TEST_CASE("store: the oldest active domain, seen again after a write") {
  char tmpl[] = "/tmp/mxg-oldest-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto cs = ConfigStore::open(dir);
  REQUIRE(cs.ok());
  ConfigStore& store = **cs;
  ConfigReader reader(store);
  CHECK_FALSE(reader.oldest_active_domain()->has_value());
  auto put = [&](const char* name, DomainStatus st, int64_t created) {
    Domain d;
    d.name = name;
    d.customer = "acme";
    d.status = st;
    d.created_ms = created;
    REQUIRE(store.put_domain(d).ok());
  };
  put("pending.example", DomainStatus::kPendingVerification, 100);
  CHECK_FALSE(reader.oldest_active_domain()->has_value());
  put("zeta.example", DomainStatus::kActive, 200);
  put("alpha.example", DomainStatus::kActive, 300);  // first by name, but added later
  CHECK(**reader.oldest_active_domain() == "zeta.example");
  CHECK(**reader.oldest_active_domain() == "zeta.example");  // the cached answer
  put("zeta.example", DomainStatus::kSuspended, 200);
  CHECK(**reader.oldest_active_domain() == "alpha.example");
  put("beta.example", DomainStatus::kActive, 300);  // same time: the name decides
  CHECK(**reader.oldest_active_domain() == "alpha.example");
  REQUIRE(*store.remove_domain("alpha.example"));
  CHECK(**reader.oldest_active_domain() == "beta.example");
  std::filesystem::remove_all(dir);
}
