// mxguard-web's request handling without sockets: cookies, sessions, the
// login rate limiter, static file paths and the /api/v1 router. server.cpp
// feeds it requests from libmicrohttpd; the unit tests feed it directly.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/store/accounts.hpp"

namespace mxguard::web {

using Clock = std::chrono::steady_clock;

// "a=1; b=2" -> {a:1, b:2}; a name seen twice keeps the first value.
std::map<std::string, std::string, std::less<>> parse_cookies(std::string_view header);

// The file under `root` that URL path `url` names, or nullopt when the path
// climbs out (".."), has a NUL or backslash, or a hidden segment. "/" -> index.html.
std::optional<std::string> static_file_path(std::string_view root, std::string_view url);
std::string_view content_type_for(std::string_view path);

struct Session {
  std::string id;  // the cookie value
  std::string user;
  store::Role role = store::Role::kUser;
  std::string csrf_token;
  Clock::time_point created, last_seen;
  // password_stamp() of the user's password when the session began: a
  // session outlives no password change but the one it made itself.
  std::string password_stamp;
};

// A short digest of a user's stored password hash: it changes with every
// new password, set by anyone (an admin's reset, `mxguard user passwd`).
std::string password_stamp(const store::User& u);

// In memory only: a restart of mxguard-web logs everyone out.
class SessionStore {
 public:
  SessionStore(std::chrono::milliseconds idle, std::chrono::milliseconds lifetime) : idle_(idle), lifetime_(lifetime) {}
  Session create(const std::string& user, store::Role role, Clock::time_point now, std::string password_stamp = {});
  // After the session's own user changed their password through it.
  void restamp(std::string_view id, std::string password_stamp);
  // The live session with this id (touching it), or nullopt when unknown or expired.
  std::optional<Session> find(std::string_view id, Clock::time_point now);
  // Whether the session still lives, without touching it (a long-lived
  // stream must not keep an idle session alive).
  bool alive(std::string_view id, Clock::time_point now) const;
  void remove(std::string_view id);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::chrono::milliseconds idle_, lifetime_;
  std::map<std::string, Session, std::less<>> sessions_;
};

// At most `max` failures per key in a sliding `window`.
class RateLimiter {
 public:
  RateLimiter(unsigned max, std::chrono::milliseconds window) : max_(max), window_(window) {}
  // Seconds until the key may try again; 0 = it may.
  unsigned retry_after(const std::string& key, Clock::time_point now);
  void record_failure(const std::string& key, Clock::time_point now);

 private:
  std::mutex mu_;
  unsigned max_;
  std::chrono::milliseconds window_;
  std::map<std::string, std::deque<Clock::time_point>> failures_;
};

struct Request {
  std::string method, path, body, client;  // client: the peer address
  std::map<std::string, std::string, std::less<>> headers;  // names in lower case
  std::map<std::string, std::string, std::less<>> query;    // ?name=value, decoded; a name seen twice keeps the first
  std::string_view header(std::string_view name) const;
  std::string_view param(std::string_view name) const;
};

struct Response {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string file;  // non-empty: serve this file's contents instead of body
  // Set: the body is produced while it is sent (text/event-stream). The
  // server calls it from the connection's own thread for each next chunk;
  // a call waits (bounded) until it has one, and nullopt ends the body.
  std::function<std::optional<std::string>()> stream;
};

struct ApiOptions {
  std::string public_url;  // the accepted Origin besides the Host's own
  bool secure = true;      // HTTPS: the cookie carries Secure, the Host origin is https://
  std::string static_dir;
  std::chrono::milliseconds session_idle{30 * 60'000}, session_lifetime{12 * 3'600'000};
  unsigned max_login_failures = 5;
  std::chrono::milliseconds login_window{5 * 60'000};
};

// Reads a user by name from the store (nullopt: no such user).
using UserLookup = std::function<std::optional<store::User>(const std::string&)>;
// The API beyond the session: called for a request that passed the Origin
// and CSRF checks, with its session (null: not logged in); nullopt when no
// handler knows the path.
using Routes = std::function<std::optional<Response>(const Request&, const Session*)>;
// Server-rendered pages outside /api/ (the digest links): called with the
// request and whether its Origin is this server's (origin_ok); nullopt when
// no page knows the path (then a static file is served).
using Pages = std::function<std::optional<Response>(const Request&, bool same_origin)>;

class Api {
 public:
  Api(ApiOptions opts, UserLookup lookup, Routes routes = {}, Pages pages = {});
  Response handle(const Request& req, Clock::time_point now);
  SessionStore& sessions() { return sessions_; }

 private:
  Response api(const Request& req, Clock::time_point now);
  Response login(const Request& req, Clock::time_point now);
  Response static_file(const Request& req) const;
  bool origin_ok(const Request& req) const;

  ApiOptions opts_;
  UserLookup lookup_;
  Routes routes_;
  Pages pages_;
  SessionStore sessions_;
  RateLimiter by_user_, by_client_;
  std::string dummy_hash_;  // verified against for unknown users, so they take as long as known ones
};

Response json_error(unsigned status, std::string_view code, std::string_view message);
void add_security_headers(Response& r);

}  // namespace mxguard::web
