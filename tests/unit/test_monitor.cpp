// The monitoring operations of the admin library: the live feed's scope,
// filters and cursor, tracking's scope, and the statistics' counts and
// score histogram, from spools fed with known entries and events.
#include <doctest.h>

#include "temp_dir.hpp"

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/admin/feed.hpp"
#include "mxguard/admin/stats.hpp"
#include "mxguard/admin/track.hpp"
#include "mxguard/store/config_store.hpp"
#include "mxguard/store/spool.hpp"

using namespace mxguard;
using namespace mxguard::store;
using mxguard::testing::TempDir;

namespace {

constexpr int64_t kHour = 3'600'000;
// Ten minutes into an hour, so every event below falls in the last bucket.
constexpr int64_t kNow = 1'780'002'000'000 / kHour * kHour + 10 * 60'000;
constexpr int64_t kT0 = kNow - 5 * 60'000;

std::string entry(const std::string& id, std::vector<std::string> rcpts, const std::string& action, double score,
                  std::vector<std::string> rules, int64_t t, const std::string& subject = "hello") {
  nlohmann::ordered_json reasons = nlohmann::ordered_json::array();
  for (const auto& r : rules) reasons.push_back({{"rule", r}, {"score", 1.0}});
  return nlohmann::ordered_json{{"time_ms", t},          {"id", id},         {"shard", 0},
                                {"client", "192.0.2.9"}, {"helo", "h.test"}, {"sender", "s@sender.test"},
                                {"recipients", rcpts},   {"subject", subject}, {"score", score},
                                {"action", action},      {"reasons", reasons}}
      .dump();
}

TrackEvent event(const std::string& decision, unsigned code, std::vector<std::string> rcpts, int64_t t,
                 const std::string& id = "") {
  TrackEvent e;
  e.time_ms = t;
  e.client_ip = "192.0.2.9";
  e.sender = "s@sender.test";
  e.recipients = std::move(rcpts);
  e.decision = decision;
  e.code = code;
  e.message_id = id;
  return e;
}

struct Fixture {
  TempDir dir;
  Config cfg;
  std::unique_ptr<ConfigStore> store;
  admin::Principal op;
  admin::Principal acme{"acme-admin", Role::kCustomerAdmin, "acme", ""};
  admin::Principal globex{"globex-admin", Role::kCustomerAdmin, "globex", ""};
  admin::Principal pm{"pm", Role::kPostmaster, "acme", "b.example"};
  admin::Principal anna{"anna", Role::kUser, "acme", ""};

  Fixture() {
    cfg.state_dir = dir.path();
    auto cs = ConfigStore::open(dir.path());
    REQUIRE(cs.ok());
    store = std::move(*cs);
    for (auto [name, customer] : {std::pair{"a.example", "acme"}, {"b.example", "acme"}, {"g.example", "globex"}}) {
      Domain d;
      d.name = name;
      d.customer = customer;
      d.status = DomainStatus::kActive;
      REQUIRE(store->put_domain(d).ok());
    }
    User u;
    u.name = "anna";
    u.role = Role::kUser;
    u.customer = "acme";
    u.address = "anna@a.example";
    REQUIRE(*store->add_user(u));
    {
      auto s0 = Spool::open(dir.path(), 0);
      REQUIRE(s0.ok());
      REQUIRE((*s0)->store_batch({}, {entry("m1.s0", {"anna@a.example"}, "deliver", 1.5, {"RULE_A"}, kT0),
                                      entry("m2.s0", {"x@g.example"}, "quarantine", 12, {"RULE_A", "RULE_B"}, kT0 + 1),
                                      entry("m3.s0", {"bob@a.example", "y@g.example"}, "reject", 7.2, {"RULE_B"},
                                            kT0 + 2)})
                  .ok());
      REQUIRE((*s0)->add_events({event("accepted", 250, {"anna@a.example"}, kT0, "m1.s0"),
                                 event("quarantined", 250, {"x@g.example"}, kT0 + 1, "m2.s0"),
                                 event("rejected", 550, {"bob@a.example", "y@g.example"}, kT0 + 2),
                                 event("relay_denied", 554, {"z@other.test"}, kT0 + 3),
                                 event("delivered", 250, {"anna@a.example"}, kT0 + 4, "m1.s0"),
                                 // Two days back: outside the hourly window.
                                 event("accepted", 250, {"anna@a.example"}, kT0 - 48 * kHour, "old.s0")})
                  .ok());
    }
    auto s1 = Spool::open(dir.path(), 1);
    REQUIRE(s1.ok());
    REQUIRE((*s1)->store_batch({}, {entry("m4.s1", {"c@b.example"}, "deliver", -0.5, {"RULE_B"}, kT0 + 5,
                                          "Your Invoice")})
                .ok());
    REQUIRE((*s1)->add_events({event("accepted", 250, {"c@b.example"}, kT0 + 5, "m4.s1"),
                               event("deferred", 451, {"c@b.example"}, kT0 + 6, "m4.s1"),
                               event("bounced", 550, {"c@b.example"}, kT0 + 7, "m4.s1")})
                .ok());
  }

  admin::Actor as(const admin::Principal& p) { return {cfg, *store, p}; }

  std::vector<std::string> feed_ids(const admin::Principal& p, admin::FeedFilter f = {}) {
    auto page = admin::read_feed(as(p), f, {}, 100);
    REQUIRE(page);
    std::vector<std::string> out;
    for (const auto& e : page->entries) out.push_back(e.entry["id"].get<std::string>());
    return out;
  }
};

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("feed: each role sees the entries of its recipients, and only those recipients") {
  Fixture fx;
  CHECK(fx.feed_ids(fx.op) == V{"m1.s0", "m2.s0", "m3.s0", "m4.s1"});
  CHECK(fx.feed_ids(fx.acme) == V{"m1.s0", "m3.s0", "m4.s1"});
  CHECK(fx.feed_ids(fx.globex) == V{"m2.s0", "m3.s0"});
  CHECK(fx.feed_ids(fx.pm) == V{"m4.s1"});
  CHECK(fx.feed_ids(fx.anna) == V{"m1.s0"});
  auto page = admin::read_feed(fx.as(fx.globex), {}, {}, 100);
  REQUIRE(page);
  // The entry to both tenants shows globex only its own recipient.
  CHECK(page->entries[1].entry["recipients"] == nlohmann::ordered_json::array({"y@g.example"}));
  auto all = admin::read_feed(fx.as(fx.op), {}, {}, 100);
  REQUIRE(all);
  CHECK(all->entries[2].entry["recipients"].size() == 2);
  // What became of each message, from its tracking events.
  CHECK(all->entries[0].delivery == "delivered");
  CHECK(all->entries[1].delivery == "held");
  CHECK(all->entries[2].delivery == "");
  CHECK(all->entries[3].delivery == "bounced");
}

TEST_CASE("feed: filters, another tenant's domain, bad values") {
  Fixture fx;
  CHECK(fx.feed_ids(fx.acme, {.domain = "B.example"}) == V{"m4.s1"});
  CHECK(fx.feed_ids(fx.op, {.action = "reject"}) == V{"m3.s0"});
  CHECK(fx.feed_ids(fx.acme, {.text = "invoice"}) == V{"m4.s1"});
  CHECK(fx.feed_ids(fx.acme, {.text = "BOB@"}) == V{"m3.s0"});
  CHECK(fx.feed_ids(fx.globex, {.text = "bob@"}).empty());  // a recipient it does not see
  CHECK(fx.feed_ids(fx.op, {.since = "+1d"}).empty());
  for (const auto& [who, domain] : {std::pair{&fx.acme, "g.example"}, {&fx.pm, "a.example"}, {&fx.op, "nowhere.example"}}) {
    auto r = admin::read_feed(fx.as(*who), {.domain = domain}, {}, 100);
    REQUIRE(!r);
    CHECK(r.failure().category == admin::Category::kNotFound);
    CHECK(r.failure().field == "domain");
    CHECK(r.failure().message == std::string("no such domain: ") + domain);
  }
  auto bad = admin::read_feed(fx.as(fx.op), {.action = "explode"}, {}, 100);
  REQUIRE(!bad);
  CHECK(bad.failure().category == admin::Category::kUsage);
  CHECK(bad.failure().field == "action");
  CHECK(admin::read_feed(fx.as(fx.op), {.since = "yesterday-ish"}, {}, 100).failure().field == "since");
}

TEST_CASE("feed: the limit keeps the newest; the cursor gives only what came after") {
  Fixture fx;
  auto page = admin::read_feed(fx.as(fx.op), {}, {}, 2);
  REQUIRE(page);
  REQUIRE(page->entries.size() == 2);
  CHECK(page->entries[0].entry["id"] == "m3.s0");
  CHECK(page->cursor.to_string() == "0:3,1:1");
  auto none = admin::read_feed(fx.as(fx.op), {}, page->cursor, 100);
  REQUIRE(none);
  CHECK(none->entries.empty());
  {
    auto s1 = Spool::open(fx.dir.path(), 1);
    REQUIRE(s1.ok());
    REQUIRE((*s1)->store_batch({}, {entry("m5.s1", {"d@b.example"}, "deliver", 0, {}, kT0 + 9)}).ok());
  }
  auto cursor = admin::parse_feed_cursor(page->cursor.to_string());
  REQUIRE(cursor);
  auto more = admin::read_feed(fx.as(fx.pm), {}, *cursor, 100);
  REQUIRE(more);
  REQUIRE(more->entries.size() == 1);
  CHECK(more->entries[0].entry["id"] == "m5.s1");
  CHECK(more->cursor.to_string() == "0:3,1:2");
  for (const char* bad : {"x", "0:", ":1", "0:1,", "0:-1", "1:2:3", "0:1;1:2"}) {
    auto c = admin::parse_feed_cursor(bad);
    CHECK_MESSAGE(!c, std::string(bad));
    if (!c) CHECK(c.failure().field == "after");
  }
  CHECK(admin::parse_feed_cursor("")->after.empty());
}

TEST_CASE("track: events cut down to the recipients the principal sees") {
  Fixture fx;
  auto mine = admin::track_events(fx.as(fx.globex), {}, 100);
  REQUIRE(mine);
  std::vector<std::string> decisions;
  for (const auto& t : mine->events) decisions.push_back(t.event.decision);
  CHECK(decisions == V{"quarantined", "rejected"});
  CHECK(mine->events[1].recipients == V{"y@g.example"});
  auto op = admin::track_events(fx.as(fx.op), {.id = "m4.s1"}, 2);
  REQUIRE(op);
  CHECK(op->older == 1);
  CHECK(op->events.size() == 2);
  CHECK(op->events[1].event.decision == "bounced");
  auto bad = admin::track_events(fx.as(fx.op), {.ip = "300.1.1.1"}, 100);
  REQUIRE(!bad);
  CHECK(bad.failure().field == "ip");
  CHECK(admin::track_events(fx.as(fx.op), {.since = "1d", .until = "2d"}, 100).failure().message ==
        "since is after until");
}

TEST_CASE("stats: counts per action and domain, rules, score histogram, delivery failures") {
  Fixture fx;
  auto s = admin::statistics(fx.as(fx.op), admin::StatsPeriod::kHour, kNow);
  REQUIRE(s);
  REQUIRE(s->buckets.size() == 24);
  CHECK(s->end_ms - s->buckets.front() == 24 * kHour);
  CHECK(s->buckets.back() <= kNow);
  CHECK(kNow < s->end_ms);
  auto total = [&](const admin::Stats& st, const char* action) {
    uint64_t n = 0;
    for (uint64_t c : st.actions.at(action)) n += c;
    return n;
  };
  // Every event falls in the last bucket; the two-day-old one in none.
  CHECK(s->actions.at("deliver").back() == 2);
  CHECK(total(*s, "deliver") == 2);
  CHECK(total(*s, "quarantine") == 1);
  CHECK(total(*s, "reject") == 1);
  CHECK(total(*s, "greylist") == 0);
  CHECK(total(*s, "refused") == 1);
  CHECK(s->domains.at("a.example").at("deliver") == 1);
  CHECK(s->domains.at("a.example").at("reject") == 1);
  CHECK(s->domains.at("g.example").at("reject") == 1);
  CHECK(s->domains.at("g.example").at("quarantine") == 1);
  CHECK(s->domains.at("other.test").at("refused") == 1);
  REQUIRE(s->top_rules.size() == 2);
  CHECK(s->top_rules[0] == std::pair<std::string, uint64_t>{"RULE_B", 3});
  CHECK(s->top_rules[1] == std::pair<std::string, uint64_t>{"RULE_A", 2});
  CHECK(s->scored == 4);
  // Buckets: <0, [0,1), [1,2), ... [9,10), [10,15), >=15.
  REQUIRE(s->scores.size() == 13);
  std::vector<uint64_t> hist;
  for (const auto& b : s->scores) hist.push_back(b.count);
  CHECK(hist == std::vector<uint64_t>{1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0});
  CHECK(s->deliveries.at("delivered") == 1);
  CHECK(s->deliveries.at("deferred") == 1);
  CHECK(s->deliveries.at("bounced") == 1);
  CHECK(s->failures.at("4xx") == 1);
  CHECK(s->failures.at("5xx") == 1);
  CHECK(s->failures.at("no_reply") == 0);
  CHECK(s->queue_messages == 0);

  // acme: its two domains; m3 counts for bob, globex's recipient is not its business.
  auto a = admin::statistics(fx.as(fx.acme), admin::StatsPeriod::kHour, kNow);
  REQUIRE(a);
  CHECK(total(*a, "deliver") == 2);
  CHECK(total(*a, "quarantine") == 0);
  CHECK(total(*a, "reject") == 1);
  CHECK(total(*a, "refused") == 0);
  CHECK(a->domains.size() == 2);
  CHECK(a->domains.count("g.example") == 0);
  CHECK(a->scored == 3);
  CHECK(a->top_rules[0] == std::pair<std::string, uint64_t>{"RULE_B", 2});
  CHECK(a->failures.at("5xx") == 1);
  auto g = admin::statistics(fx.as(fx.globex), admin::StatsPeriod::kHour, kNow);
  REQUIRE(g);
  CHECK(total(*g, "deliver") == 0);
  CHECK(g->deliveries.at("delivered") == 0);
  CHECK(g->failures.at("5xx") == 0);

  // Per day: tracking_days buckets, the old event in one of them.
  fx.cfg.smtp.tracking_days = 7;
  auto d = admin::statistics(fx.as(fx.op), admin::StatsPeriod::kDay, kNow);
  REQUIRE(d);
  CHECK(d->buckets.size() == 7);
  CHECK(total(*d, "deliver") == 3);
  auto j = admin::stats_json(*d);
  CHECK(j["period"] == "day");
  CHECK(j["totals"]["deliver"] == 3);
  CHECK(j["scores"][0]["min"].is_null());
  CHECK(j["scores"][0]["max"] == 0);

  CHECK(admin::parse_stats_period("week").failure().field == "period");
}
