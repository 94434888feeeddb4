// /api/v1/feed (a JSON page, or with ?follow=1 a text/event-stream of new
// entries), /api/v1/track and /api/v1/stats over the admin library
// (admin/feed.hpp, track.hpp, stats.hpp): scope and validation are the library's.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string_view>

#include "mxguard/core/config.hpp"
#include "mxguard/store/config_store.hpp"
#include "web_core.hpp"

namespace mxguard::web {

class FeedApi {
 public:
  // `alive` says whether a session id still lives (SessionStore::alive): a
  // stream ends when its session does.
  using SessionAlive = std::function<bool(std::string_view)>;
  FeedApi(const Config& cfg, store::ConfigStore& store) : cfg_(cfg), store_(store) {}
  void set_session_alive(SessionAlive alive) { alive_ = std::move(alive); }
  // The response for a /api/v1/feed, /track or /stats request by session `s`
  // (null: 401), or nullopt when the path is not this API's.
  std::optional<Response> handle(const Request& req, const Session* s);
  // Ends every open stream within a poll interval (the server is stopping).
  void stop() { stopping_ = true; }

  // Bounds of the live streams: how many at once, how long each lasts (the
  // browser's EventSource reconnects, resuming from its Last-Event-ID), how
  // often each looks for new entries and how long it stays silent at most.
  static constexpr unsigned kMaxStreams = 32;
  static constexpr int kStreamSeconds = 600;
  static constexpr int kPollMs = 700;
  static constexpr int kKeepAliveSeconds = 15;

 private:
  Response feed(const Request& req, const Session& s);
  Response follow(const Request& req, const Session& s);
  Response track(const Request& req, const Session& s);
  Response stats(const Request& req, const Session& s);

  const Config& cfg_;
  store::ConfigStore& store_;
  SessionAlive alive_;
  std::atomic<bool> stopping_{false};
  std::atomic<unsigned> streams_{0};
};

}  // namespace mxguard::web
