// GET /api/v1/feed?domain=&action=&text=&since=&limit=&after= (with follow=1
// a text/event-stream), GET /api/v1/track?sender=&recipient=&ip=&id=&ref=
// &since=&until=&limit=, GET /api/v1/stats?period=hour|day.
#include "feed_api.hpp"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <limits>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "domains_api.hpp"
#include "mxguard/admin/feed.hpp"
#include "mxguard/admin/stats.hpp"
#include "mxguard/admin/text.hpp"
#include "mxguard/admin/track.hpp"

namespace mxguard::web {

namespace {

// A count parameter: absent is `fallback`; otherwise 1..max (usage naming it).
admin::Outcome<size_t> count_param(const Request& req, std::string_view name, size_t fallback, size_t max) {
  std::string_view v = req.param(name);
  if (v.empty()) return fallback;
  size_t n = 0;
  auto r = std::from_chars(v.data(), v.data() + v.size(), n);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size() || n < 1 || n > max)
    return admin::usage(fmt::format("expected a number from 1 to {}", max), std::string(name));
  return n;
}

admin::Outcome<bool> flag_param(const Request& req, std::string_view name) {
  std::string_view v = req.param(name);
  if (v.empty() || v == "0" || v == "false") return false;
  if (v == "1" || v == "true") return true;
  return admin::usage("expected 1 or 0", std::string(name));
}

admin::FeedFilter feed_filter(const Request& req) {
  return {std::string(req.param("domain")), std::string(req.param("action")), std::string(req.param("text")),
          std::string(req.param("since"))};
}

nlohmann::ordered_json page_json(const admin::FeedPage& page) {
  nlohmann::ordered_json entries = nlohmann::ordered_json::array();
  for (const auto& e : page.entries) entries.push_back(admin::feed_entry_json(e));
  return {{"entries", entries}, {"cursor", page.cursor.to_string()}};
}

constexpr size_t kMaxFeedLimit = 1000;
constexpr size_t kMaxTrackLimit = 10'000;

}  // namespace

std::optional<Response> FeedApi::handle(const Request& req, const Session* s) {
  std::string_view path = req.path;
  if (path != "/api/v1/feed" && path != "/api/v1/track" && path != "/api/v1/stats") return std::nullopt;
  if (!s) return json_error(401, "not_logged_in", "not logged in");
  if (req.method != "GET") return json_error(405, "method_not_allowed", "GET");
  if (path == "/api/v1/track") return track(req, *s);
  if (path == "/api/v1/stats") return stats(req, *s);
  auto follow_it = flag_param(req, "follow");
  if (!follow_it) return failure_response(follow_it.failure());
  return *follow_it ? follow(req, *s) : feed(req, *s);
}

Response FeedApi::feed(const Request& req, const Session& s) {
  auto limit = count_param(req, "limit", 100, kMaxFeedLimit);
  if (!limit) return failure_response(limit.failure());
  auto from = admin::parse_feed_cursor(req.param("after"));
  if (!from) return failure_response(from.failure());
  std::lock_guard lock(operations_mutex());
  auto p = session_principal(store_, s);
  if (!p) return failure_response(p.failure());
  auto page = admin::read_feed({cfg_, store_, *p}, feed_filter(req), *from, *limit);
  if (!page) return failure_response(page.failure());
  return json_response(200, page_json(*page));
}

// The stream: one "entries" event per poll that found new entries (its id
// is the cursor, so a reconnecting EventSource resumes from Last-Event-ID),
// a comment line when it stayed silent for kKeepAliveSeconds, and the end
// after kStreamSeconds, when the session ends, on a failure or when the
// server stops. No lock is held while it waits.
Response FeedApi::follow(const Request& req, const Session& s) {
  std::string_view resume = req.header("last-event-id");
  auto from = admin::parse_feed_cursor(resume.empty() ? req.param("after") : resume,
                                       resume.empty() ? "after" : "Last-Event-ID");
  if (!from) return failure_response(from.failure());
  struct State {
    std::atomic<unsigned>& count;
    admin::FeedFilter filter;
    admin::FeedCursor cursor;
    Session session;
    Clock::time_point end, last_sent;
    bool started = false, done = false;
    explicit State(std::atomic<unsigned>& c) : count(c) {}
    ~State() { --count; }
  };
  if (++streams_ > kMaxStreams) {
    --streams_;
    return json_error(503, "busy", "too many live feeds are open; try again later");
  }
  auto st = std::make_shared<State>(streams_);
  st->filter = feed_filter(req);
  st->cursor = *from;
  st->session = s;
  {
    // Check the filter now, so a bad one is a 400 rather than an empty
    // stream; without a cursor the stream starts at the current end.
    std::lock_guard lock(operations_mutex());
    auto p = session_principal(store_, s);
    if (!p) return failure_response(p.failure());
    auto page = admin::read_feed({cfg_, store_, *p}, st->filter, st->cursor, 0);
    if (!page) return failure_response(page.failure());
    // A resumed stream goes on after its cursor; a new one starts at the end.
    if (st->cursor.after.empty()) st->cursor = page->cursor;
  }
  st->end = Clock::now() + std::chrono::seconds(kStreamSeconds);
  Response r;
  r.content_type = "text/event-stream";
  r.stream = [this, st]() -> std::optional<std::string> {
    if (st->done) return std::nullopt;
    if (!st->started) {
      st->started = true;
      st->last_sent = Clock::now();
      return fmt::format("retry: 2000\nid: {}\n: connected\n\n", st->cursor.to_string());
    }
    while (!stopping_ && Clock::now() < st->end) {
      {
        std::lock_guard lock(operations_mutex());
        if (alive_ && !alive_(st->session.id)) break;
        auto p = session_principal(store_, st->session);
        if (!p) break;
        auto page = admin::read_feed({cfg_, store_, *p}, st->filter, st->cursor, kMaxFeedLimit);
        if (!page) {
          st->done = true;
          nlohmann::ordered_json j = {{"error", page.failure().message},
                                      {"code", admin::category_info(page.failure().category).name}};
          return fmt::format("event: error\ndata: {}\n\n", j.dump());
        }
        st->cursor = page->cursor;
        if (!page->entries.empty()) {
          st->last_sent = Clock::now();
          return fmt::format("event: entries\nid: {}\ndata: {}\n\n", st->cursor.to_string(),
                             page_json(*page).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
        }
      }
      if (Clock::now() - st->last_sent >= std::chrono::seconds(kKeepAliveSeconds)) {
        st->last_sent = Clock::now();
        return std::string(": keep-alive\n\n");
      }
      for (int waited = 0; waited < kPollMs && !stopping_; waited += 100)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return std::nullopt;
  };
  return r;
}

Response FeedApi::track(const Request& req, const Session& s) {
  auto limit = count_param(req, "limit", 1000, kMaxTrackLimit);
  if (!limit) return failure_response(limit.failure());
  admin::TrackFilter f;
  f.sender = req.param("sender");
  f.recipient = req.param("recipient");
  f.ip = req.param("ip");
  f.id = req.param("id");
  f.ref = req.param("ref");
  f.since = req.param("since");
  f.until = req.param("until");
  std::lock_guard lock(operations_mutex());
  auto p = session_principal(store_, s);
  if (!p) return failure_response(p.failure());
  auto found = admin::track_events({cfg_, store_, *p}, f, *limit);
  if (!found) return failure_response(found.failure());
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  for (const auto& t : found->events) events.push_back(admin::tracked_json(t));
  return json_response(200, {{"events", events}, {"older", found->older}});
}

Response FeedApi::stats(const Request& req, const Session& s) {
  auto period = admin::parse_stats_period(req.param("period"));
  if (!period) return failure_response(period.failure());
  std::lock_guard lock(operations_mutex());
  auto p = session_principal(store_, s);
  if (!p) return failure_response(p.failure());
  auto out = admin::statistics({cfg_, store_, *p}, *period, admin::now_ms());
  if (!out) return failure_response(out.failure());
  return json_response(200, admin::stats_json(*out));
}

}  // namespace mxguard::web
