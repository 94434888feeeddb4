// Tracking events: the versioned value encoding, the time-ordered key and
// the filter `mxguard track` applies.
#include <doctest.h>

#include <stdlib.h>

#include <filesystem>

#include "mxguard/store/spool.hpp"
#include "mxguard/store/tracking.hpp"

using namespace mxguard::store;

namespace {
TrackEvent sample() {
  TrackEvent e;
  e.time_ms = 1'765'000'000'123;
  e.shard = 3;
  e.session = 42;
  e.client_ip = "192.0.2.7";
  e.helo = "mail.example.net";
  e.sender = "Alice@Example.net";
  e.recipients = {"bob@example.com", "carol@example.com"};
  e.decision = "relay_denied";
  e.code = 550;
  e.reason = "5.7.1 relay access denied";
  e.ref_id = "R-abc123";
  return e;
}
}  // namespace

TEST_CASE("tracking: an event survives encode and decode") {
  TrackEvent e = sample();
  std::string v = encode_event(e);
  CHECK(static_cast<uint8_t>(v[0]) == kTrackEventVersion);
  auto d = decode_event(v);
  REQUIRE(d);
  CHECK(d->time_ms == e.time_ms);
  CHECK(d->shard == 3);
  CHECK(d->session == 42);
  CHECK(d->client_ip == e.client_ip);
  CHECK(d->helo == e.helo);
  CHECK(d->sender == e.sender);
  CHECK(d->recipients == e.recipients);
  CHECK(d->decision == e.decision);
  CHECK(d->code == 550);
  CHECK(d->reason == e.reason);
  CHECK(d->message_id.empty());
  CHECK(d->ref_id == e.ref_id);
}

TEST_CASE("tracking: unknown versions, truncation and trailing bytes are refused") {
  std::string v = encode_event(sample());
  std::string bad = v;
  bad[0] = 9;
  CHECK_FALSE(decode_event(bad));
  CHECK_FALSE(decode_event(""));
  for (size_t n = 0; n < v.size(); ++n) CHECK_FALSE(decode_event(std::string_view(v).substr(0, n)));
  CHECK_FALSE(decode_event(v + "x"));
}

TEST_CASE("tracking: keys sort by time, then sequence") {
  CHECK(event_key(1000, 5) < event_key(1001, 0));
  CHECK(event_key(1000, 1) < event_key(1000, 2));
  CHECK(event_key(255, 0) < event_key(256, 0));
  CHECK(event_key_time(event_key(1'765'000'000'123, 7)) == 1'765'000'000'123);
  CHECK_FALSE(event_key_time("short"));
}

TEST_CASE("tracking: filter matching") {
  TrackEvent e = sample();
  TrackFilter f;
  CHECK(f.matches(e));
  f.sender = "alice@example.NET";
  CHECK(f.matches(e));
  f.sender = "alice@example.org";
  CHECK_FALSE(f.matches(e));
  f = {};
  f.recipient = "CAROL@example.com";
  CHECK(f.matches(e));
  f.recipient = "dave@example.com";
  CHECK_FALSE(f.matches(e));
  f = {};
  f.client_ip = "192.0.2.7";
  CHECK(f.matches(e));
  f.client_ip = "192.0.2.70";
  CHECK_FALSE(f.matches(e));
  f = {};
  f.ref_id = "R-abc123";
  CHECK(f.matches(e));
  f.message_id = "6620f66a460af.s1";
  CHECK_FALSE(f.matches(e));
  f = {};
  f.since_ms = e.time_ms;
  f.until_ms = e.time_ms;
  CHECK(f.matches(e));
  f.since_ms = e.time_ms + 1;
  CHECK_FALSE(f.matches(e));
  f.since_ms.reset();
  f.until_ms = e.time_ms - 1;
  CHECK_FALSE(f.matches(e));
}

TEST_CASE("tracking: spool stores, finds by index and purges events") {
  char tmpl[] = "/tmp/mxg-track-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  std::string dir = tmpl;
  {
    auto spool = Spool::open(dir, 0, false);
    REQUIRE(spool);
    TrackEvent a = sample();
    a.time_ms = 1000;
    TrackEvent b = sample();
    b.time_ms = 1000;  // same millisecond: both kept
    b.sender = "other@example.org";
    b.ref_id.clear();
    b.message_id = "6620f66a460af.s1";
    TrackEvent c = sample();
    c.time_ms = 5000;
    c.session = 43;
    REQUIRE((*spool)->add_events({a, b}));
    REQUIRE((*spool)->add_events({c}));
    auto count = [&](const TrackFilter& f) {
      std::vector<int64_t> times;
      REQUIRE((*spool)->find_events(f, [&](const TrackEvent& e) { times.push_back(e.time_ms); }));
      return times;
    };
    CHECK(count({}).size() == 3);
    TrackFilter f;
    f.sender = "ALICE@example.net";
    CHECK(count(f) == std::vector<int64_t>{1000, 5000});
    f = {};
    f.message_id = "6620f66a460af.s1";
    CHECK(count(f).size() == 1);
    f = {};
    f.session = 42;
    CHECK(count(f).size() == 2);
    f = {};
    f.since_ms = 2000;
    CHECK(count(f) == std::vector<int64_t>{5000});
    auto purged = (*spool)->purge_events(2000);
    REQUIRE(purged);
    CHECK(*purged == 2);
    f = {};
    f.sender = "alice@example.net";
    CHECK(count(f) == std::vector<int64_t>{5000});
    f = {};
    f.message_id = "6620f66a460af.s1";
    CHECK(count(f).empty());
  }
  std::filesystem::remove_all(dir);
}
