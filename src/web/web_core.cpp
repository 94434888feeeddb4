// See web_core.hpp: everything mxguard-web decides, without a socket.
#include "web_core.hpp"

#include <sodium.h>

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace mxguard::web {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string random_token() {
  unsigned char raw[32];
  randombytes_buf(raw, sizeof raw);
  char out[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(out, sizeof out, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return out;
}

bool equal_ct(std::string_view a, std::string_view b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

constexpr const char* kCookie = "mxg_session";

}  // namespace

std::map<std::string, std::string, std::less<>> parse_cookies(std::string_view header) {
  std::map<std::string, std::string, std::less<>> out;
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view part = trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    size_t eq = part.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    std::string_view name = trim(part.substr(0, eq)), value = trim(part.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    out.emplace(std::string(name), std::string(value));
  }
  return out;
}

std::optional<std::string> static_file_path(std::string_view root, std::string_view url) {
  if (url.empty() || url.front() != '/') return std::nullopt;
  if (url.find('\0') != std::string_view::npos || url.find('\\') != std::string_view::npos) return std::nullopt;
  std::string_view rest = url.substr(1);
  std::string out(root);
  if (rest.empty()) return out + "/index.html";
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    // "." and ".." and hidden files; an empty segment ("//") too.
    if (seg.empty() || seg.front() == '.') return std::nullopt;
    out += '/';
    out += seg;
  }
  if (url.back() == '/') out += "/index.html";
  return out;
}

std::string_view content_type_for(std::string_view path) {
  static const std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},  {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"}, {".json", "application/json"},
      {".svg", "image/svg+xml"},              {".png", "image/png"},
      {".ico", "image/x-icon"},               {".txt", "text/plain; charset=utf-8"},
      {".woff2", "font/woff2"}};
  for (const auto& [ext, type] : kTypes)
    if (path.ends_with(ext)) return type;
  return "application/octet-stream";
}

std::string password_stamp(const store::User& u) {
  unsigned char out[16];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(u.password_hash.data()),
                     u.password_hash.size(), nullptr, 0);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : out) {
    hex += kHex[c >> 4];
    hex += kHex[c & 15];
  }
  return hex;
}

Session SessionStore::create(const std::string& user, store::Role role, Clock::time_point now,
                             std::string password_stamp) {
  Session s{random_token(), user, role, random_token(), now, now, std::move(password_stamp)};
  std::lock_guard lock(mu_);
  // Expired sessions go when a new one is made, so the map cannot grow without bound.
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    bool dead = now - it->second.last_seen > idle_ || now - it->second.created > lifetime_;
    it = dead ? sessions_.erase(it) : std::next(it);
  }
  sessions_[s.id] = s;
  return s;
}

std::optional<Session> SessionStore::find(std::string_view id, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  if (now - it->second.last_seen > idle_ || now - it->second.created > lifetime_) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_seen = now;
  return it->second;
}

void SessionStore::restamp(std::string_view id, std::string password_stamp) {
  std::lock_guard lock(mu_);
  if (auto it = sessions_.find(id); it != sessions_.end()) it->second.password_stamp = std::move(password_stamp);
}

bool SessionStore::alive(std::string_view id, Clock::time_point now) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  return it != sessions_.end() && now - it->second.last_seen <= idle_ && now - it->second.created <= lifetime_;
}

void SessionStore::remove(std::string_view id) {
  std::lock_guard lock(mu_);
  if (auto it = sessions_.find(id); it != sessions_.end()) sessions_.erase(it);
}

size_t SessionStore::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

unsigned RateLimiter::retry_after(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  if (it == failures_.end()) return 0;
  auto& q = it->second;
  while (!q.empty() && now - q.front() >= window_) q.pop_front();
  if (q.empty()) {
    failures_.erase(it);
    return 0;
  }
  if (q.size() < max_) return 0;
  auto wait = std::chrono::duration_cast<std::chrono::seconds>(q.front() + window_ - now).count() + 1;
  return static_cast<unsigned>(std::max<int64_t>(wait, 1));
}

void RateLimiter::record_failure(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto& q = failures_[key];
  q.push_back(now);
  while (q.size() > max_) q.pop_front();
}

std::string_view Request::header(std::string_view name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string_view{} : std::string_view(it->second);
}

std::string_view Request::param(std::string_view name) const {
  auto it = query.find(name);
  return it == query.end() ? std::string_view{} : std::string_view(it->second);
}

Response json_error(unsigned status, std::string_view code, std::string_view message) {
  Response r;
  r.status = status;
  // The message may quote the request (a path is any bytes once
  // percent-decoded): bytes that are not UTF-8 become U+FFFD instead of an
  // exception out of the encoder.
  r.body = nlohmann::json{{"error", message}, {"code", code}}.dump(-1, ' ', false,
                                                                   nlohmann::json::error_handler_t::replace);
  return r;
}

void add_security_headers(Response& r) {
  // A header the response set itself wins (the digest pages' Referrer-Policy).
  auto add = [&r](std::string_view name, std::string_view value) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return;
    r.headers.emplace_back(std::string(name), std::string(value));
  };
  add("Content-Security-Policy",
      "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'");
  add("X-Content-Type-Options", "nosniff");
  add("Referrer-Policy", "no-referrer");
  add("X-Frame-Options", "DENY");
  add("Cache-Control", "no-store");
}

Api::Api(ApiOptions opts, UserLookup lookup, Routes routes, Pages pages)
    : opts_(std::move(opts)),
      lookup_(std::move(lookup)),
      routes_(std::move(routes)),
      pages_(std::move(pages)),
      sessions_(opts_.session_idle, opts_.session_lifetime),
      by_user_(opts_.max_login_failures, opts_.login_window),
      by_client_(opts_.max_login_failures, opts_.login_window) {
  char out[crypto_pwhash_STRBYTES];
  std::string pw = random_token();
  if (crypto_pwhash_str_alg(out, pw.data(), pw.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                            crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) == 0)
    dummy_hash_ = out;
}

bool Api::origin_ok(const Request& req) const {
  std::string_view origin = req.header("origin");
  if (origin.empty()) return false;
  if (!opts_.public_url.empty() && origin == opts_.public_url) return true;
  std::string_view host = req.header("host");
  return !host.empty() && origin == fmt::format("{}://{}", opts_.secure ? "https" : "http", host);
}

Response Api::handle(const Request& req, Clock::time_point now) {
  std::optional<Response> r;
  if (req.path == "/api" || req.path.starts_with("/api/")) r = api(req, now);
  else if (pages_) r = pages_(req, origin_ok(req));
  if (!r) r = static_file(req);
  add_security_headers(*r);
  return std::move(*r);
}

Response Api::static_file(const Request& req) const {
  if (req.method != "GET" && req.method != "HEAD") return json_error(405, "method_not_allowed", "GET only");
  auto path = static_file_path(opts_.static_dir, req.path);
  if (!path) return json_error(404, "not_found", "no such file");
  Response r;
  r.file = *path;
  r.content_type = std::string(content_type_for(*path));
  return r;
}

Response Api::api(const Request& req, Clock::time_point now) {
  bool changes = req.method == "POST" || req.method == "PATCH" || req.method == "DELETE" || req.method == "PUT";
  if (req.path == "/api/v1/session" && req.method == "POST") return login(req, now);
  if (changes && !origin_ok(req)) return json_error(403, "bad_origin", "the request's Origin is not this dashboard");

  auto cookies = parse_cookies(req.header("cookie"));
  std::optional<Session> s;
  if (auto it = cookies.find(kCookie); it != cookies.end()) s = sessions_.find(it->second, now);
  // A password changed since the login (an admin's reset, say) ends the
  // session: whoever knew only the old password is out.
  if (s) {
    std::optional<store::User> u = lookup_(s->user);
    if (!u || password_stamp(*u) != s->password_stamp) {
      sessions_.remove(s->id);
      s.reset();
    }
  }
  if (changes && s && !equal_ct(req.header("x-csrf-token"), s->csrf_token))
    return json_error(403, "bad_csrf_token", "missing or wrong X-CSRF-Token");

  if (req.path == "/api/v1/session") {
    if (req.method == "GET") {
      if (!s) return json_error(401, "not_logged_in", "not logged in");
      Response r;
      r.body = nlohmann::json{{"user", s->user}, {"role", store::to_string(s->role)}, {"csrf_token", s->csrf_token}}
                   .dump();
      return r;
    }
    if (req.method == "DELETE") {
      if (!s) return json_error(401, "not_logged_in", "not logged in");
      sessions_.remove(s->id);
      Response r;
      r.body = R"({"logged_out":true})";
      r.headers.emplace_back("Set-Cookie", fmt::format("{}=; HttpOnly;{} SameSite=Strict; Path=/; Max-Age=0", kCookie,
                                                       opts_.secure ? " Secure;" : ""));
      return r;
    }
    return json_error(405, "method_not_allowed", "GET, POST or DELETE");
  }
  if (routes_)
    if (auto r = routes_(req, s ? &*s : nullptr)) {
      // The session that changed its own user's password stays logged in
      // (its user just proved they know the old one); any other ends above.
      if (changes && s && r->status < 300)
        if (std::optional<store::User> u = lookup_(s->user); u && password_stamp(*u) != s->password_stamp)
          sessions_.restamp(s->id, password_stamp(*u));
      return std::move(*r);
    }
  return json_error(404, "not_found", fmt::format("no API at {}", req.path));
}

Response Api::login(const Request& req, Clock::time_point now) {
  if (!origin_ok(req)) return json_error(403, "bad_origin", "the request's Origin is not this dashboard");
  nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
  if (!body.is_object() || !body.contains("user") || !body["user"].is_string() || !body.contains("password") ||
      !body["password"].is_string())
    return json_error(400, "bad_request", "expected {\"user\": \"...\", \"password\": \"...\"}");
  std::string name = body["user"], password = body["password"];
  std::string user_key = "u:" + name, client_key = "c:" + req.client;
  unsigned wait = std::max(by_user_.retry_after(user_key, now), by_client_.retry_after(client_key, now));
  if (wait > 0) {
    Response r = json_error(429, "too_many_attempts", "too many failed logins; try again later");
    r.headers.emplace_back("Retry-After", std::to_string(wait));
    return r;
  }
  std::optional<store::User> u = name.empty() ? std::nullopt : lookup_(name);
  const std::string& hash = u && !u->password_hash.empty() ? u->password_hash : dummy_hash_;
  bool verified = crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
  if (!u || u->password_hash.empty() || !verified) {
    by_user_.record_failure(user_key, now);
    by_client_.record_failure(client_key, now);
    return json_error(401, "bad_credentials", "wrong user name or password");
  }
  Session s = sessions_.create(u->name, u->role, now, password_stamp(*u));
  Response r;
  r.body = nlohmann::json{{"user", s.user}, {"role", store::to_string(s.role)}, {"csrf_token", s.csrf_token}}.dump();
  r.headers.emplace_back("Set-Cookie", fmt::format("{}={}; HttpOnly;{} SameSite=Strict; Path=/", kCookie, s.id,
                                                   opts_.secure ? " Secure;" : ""));
  return r;
}

}  // namespace mxguard::web
