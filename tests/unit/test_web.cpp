// mxguard-web without sockets: cookies, static paths, sessions, the login
// limiter and the /api/v1/session routes with CSRF and Origin checks.
#include <doctest.h>
#include <sodium.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "web_core.hpp"

using namespace mxguard;
using namespace mxguard::web;
using namespace std::chrono_literals;

namespace {

std::string header_of(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

struct Fixture {
  store::User alice;
  ApiOptions opts;
  std::unique_ptr<Api> api;
  Clock::time_point t0 = Clock::now();
  int lookups = 0;

  Fixture() {
    REQUIRE(sodium_init() >= 0);
    alice.name = "alice";
    alice.role = store::Role::kCustomerAdmin;
    alice.customer = "acme";
    char out[crypto_pwhash_STRBYTES];
    // Cheapest cost: the unit suite stays fast.
    REQUIRE(crypto_pwhash_str_alg(out, "secret-pw", 9, crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN,
                                  crypto_pwhash_ALG_ARGON2ID13) == 0);
    alice.password_hash = out;
    opts.public_url = "https://mx1.example.net";
    opts.static_dir = "/srv/static";
    opts.session_idle = 10min;
    opts.session_lifetime = 1h;
    api = std::make_unique<Api>(opts, [this](const std::string& n) -> std::optional<store::User> {
      ++lookups;
      if (n == alice.name) return alice;
      return std::nullopt;
    });
  }

  Request req(std::string method, std::string path, std::string body = "") {
    Request r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.body = std::move(body);
    r.client = "192.0.2.1";
    r.headers["host"] = "mx1.example.net";
    r.headers["origin"] = "https://mx1.example.net";
    return r;
  }

  Response login(const std::string& user, const std::string& pw, std::string client = "192.0.2.1",
                 Clock::time_point at = {}) {
    Request r = req("POST", "/api/v1/session", nlohmann::json{{"user", user}, {"password", pw}}.dump());
    r.client = std::move(client);
    return api->handle(r, at == Clock::time_point{} ? t0 : at);
  }
};

std::string cookie_value(const Response& r) {
  std::string c = header_of(r, "Set-Cookie");
  auto eq = c.find('='), semi = c.find(';');
  return c.substr(eq + 1, semi - eq - 1);
}

}  // namespace

TEST_CASE("web: cookie header parsing") {
  auto c = parse_cookies("a=1; mxg_session=abc ;b=\"q\"; junk; =x; a=2");
  CHECK(c.size() == 3);
  CHECK(c["a"] == "1");
  CHECK(c["mxg_session"] == "abc");
  CHECK(c["b"] == "q");
  CHECK(parse_cookies("").empty());
  CHECK(parse_cookies(";;;").empty());
}

TEST_CASE("web: static paths stay under the root") {
  CHECK(static_file_path("/s", "/") == "/s/index.html");
  CHECK(static_file_path("/s", "/app.js") == "/s/app.js");
  CHECK(static_file_path("/s", "/css/site.css") == "/s/css/site.css");
  CHECK(static_file_path("/s", "/css/") == "/s/css/index.html");
  CHECK_FALSE(static_file_path("/s", "/../etc/passwd"));
  CHECK_FALSE(static_file_path("/s", "/css/../../x"));
  CHECK_FALSE(static_file_path("/s", "/./x"));
  CHECK_FALSE(static_file_path("/s", "/.git/config"));
  CHECK_FALSE(static_file_path("/s", "//etc/passwd"));
  CHECK_FALSE(static_file_path("/s", "/a\\..\\b"));
  CHECK_FALSE(static_file_path("/s", std::string_view("/a\0b", 4)));
  CHECK_FALSE(static_file_path("/s", "x"));
  CHECK(content_type_for("/s/index.html") == "text/html; charset=utf-8");
  CHECK(content_type_for("/s/app.js") == "text/javascript; charset=utf-8");
  CHECK(content_type_for("/s/site.css") == "text/css; charset=utf-8");
  CHECK(content_type_for("/s/blob") == "application/octet-stream");
}

TEST_CASE("web: sessions expire when idle and at their lifetime") {
  SessionStore s(10min, 1h);
  auto t = Clock::now();
  Session a = s.create("alice", store::Role::kUser, t);
  CHECK(a.id.size() >= 40);
  CHECK(a.csrf_token != a.id);
  CHECK(s.find(a.id, t + 9min));
  CHECK(s.find(a.id, t + 18min));  // touched at 9 min
  CHECK_FALSE(s.find(a.id, t + 29min));  // idle 11 min: gone
  CHECK_FALSE(s.find(a.id, t + 1min));   // and stays gone

  Session b = s.create("bob", store::Role::kUser, t);
  for (auto m = 5min; m < 60min; m += 5min) CHECK(s.find(b.id, t + m));
  CHECK_FALSE(s.find(b.id, t + 61min));  // active all along, but past its lifetime
  CHECK_FALSE(s.find("nope", t));
  Session c = s.create("carol", store::Role::kUser, t);
  s.remove(c.id);
  CHECK_FALSE(s.find(c.id, t));
}

TEST_CASE("web: the limiter allows max failures per window per key") {
  RateLimiter l(3, 5min);
  auto t = Clock::now();
  for (int i = 0; i < 3; ++i) {
    CHECK(l.retry_after("k", t) == 0);
    l.record_failure("k", t + std::chrono::seconds(i));
  }
  unsigned wait = l.retry_after("k", t + 10s);
  CHECK(wait > 280);
  CHECK(wait <= 291);
  CHECK(l.retry_after("other", t + 10s) == 0);
  CHECK(l.retry_after("k", t + 5min + 1s) == 0);  // the oldest failure left the window
}

TEST_CASE("web: login, session, logout") {
  Fixture f;
  Response bad = f.login("alice", "wrong-pw");
  CHECK(bad.status == 401);
  CHECK(nlohmann::json::parse(bad.body)["code"] == "bad_credentials");
  CHECK(header_of(bad, "Set-Cookie").empty());

  Response ok = f.login("alice", "secret-pw");
  REQUIRE(ok.status == 200);
  auto j = nlohmann::json::parse(ok.body);
  CHECK(j["user"] == "alice");
  CHECK(j["role"] == "customer-admin");
  std::string csrf = j["csrf_token"];
  std::string cookie = header_of(ok, "Set-Cookie");
  CHECK(cookie.find("HttpOnly") != std::string::npos);
  CHECK(cookie.find("Secure") != std::string::npos);
  CHECK(cookie.find("SameSite=Strict") != std::string::npos);
  CHECK(cookie.find("Path=/") != std::string::npos);
  std::string sid = cookie_value(ok);

  Request who = f.req("GET", "/api/v1/session");
  CHECK(f.api->handle(who, f.t0).status == 401);
  who.headers["cookie"] = "mxg_session=" + sid;
  Response w = f.api->handle(who, f.t0);
  CHECK(w.status == 200);
  CHECK(nlohmann::json::parse(w.body)["user"] == "alice");

  Request out = f.req("DELETE", "/api/v1/session");
  out.headers["cookie"] = "mxg_session=" + sid;
  CHECK(f.api->handle(out, f.t0).status == 403);  // no CSRF token
  out.headers["x-csrf-token"] = csrf + "x";
  CHECK(f.api->handle(out, f.t0).status == 403);
  out.headers["x-csrf-token"] = csrf;
  out.headers["origin"] = "https://evil.example";
  CHECK(nlohmann::json::parse(f.api->handle(out, f.t0).body)["code"] == "bad_origin");
  out.headers["origin"] = "https://mx1.example.net";
  CHECK(f.api->handle(out, f.t0).status == 200);
  CHECK(f.api->handle(who, f.t0).status == 401);  // logged out
}

TEST_CASE("web: login checks Origin and its body") {
  Fixture f;
  Request r = f.req("POST", "/api/v1/session", R"({"user":"alice","password":"secret-pw"})");
  r.headers.erase("origin");
  CHECK(f.api->handle(r, f.t0).status == 403);
  r.headers["origin"] = "https://mx1.example.net.evil.example";
  CHECK(f.api->handle(r, f.t0).status == 403);
  r.headers["origin"] = "https://mx1.example.net";  // the Host's own origin
  r.headers["host"] = "10.0.0.5:8443";
  r.headers["origin"] = "https://10.0.0.5:8443";
  CHECK(f.api->handle(r, f.t0).status == 200);
  r.body = "not json";
  CHECK(f.api->handle(r, f.t0).status == 400);
  r.body = R"({"user":1,"password":"x"})";
  CHECK(f.api->handle(r, f.t0).status == 400);
}

TEST_CASE("web: failed logins are limited per user and per client") {
  Fixture f;
  for (int i = 0; i < 5; ++i) CHECK(f.login("alice", "wrong-pw", "192.0.2." + std::to_string(10 + i)).status == 401);
  Response limited = f.login("alice", "secret-pw", "192.0.2.99");  // even the right password
  CHECK(limited.status == 429);
  CHECK(std::stoi(header_of(limited, "Retry-After")) > 0);
  CHECK(f.login("alice", "secret-pw", "192.0.2.99", f.t0 + 5min + 10s).status == 200);

  // Unknown users count per client address too, and still run a hash verify.
  Fixture g;
  for (int i = 0; i < 5; ++i) CHECK(g.login("nobody" + std::to_string(i), "x", "198.51.100.7").status == 401);
  CHECK(g.login("alice", "secret-pw", "198.51.100.7").status == 429);
  CHECK(g.login("alice", "secret-pw", "198.51.100.8").status == 200);
}

TEST_CASE("web: routing, unknown API paths and static files") {
  Fixture f;
  Response nf = f.api->handle(f.req("GET", "/api/v1/nothing"), f.t0);
  CHECK(nf.status == 404);
  CHECK(nlohmann::json::parse(nf.body)["code"] == "not_found");
  CHECK(nf.content_type == "application/json");
  CHECK(f.api->handle(f.req("PATCH", "/api/v1/session"), f.t0).status == 405);
  Response idx = f.api->handle(f.req("GET", "/"), f.t0);
  CHECK(idx.file == "/srv/static/index.html");
  CHECK(idx.content_type == "text/html; charset=utf-8");
  CHECK(header_of(idx, "Content-Security-Policy").find("script-src 'self'") != std::string::npos);
  CHECK(header_of(idx, "X-Content-Type-Options") == "nosniff");
  CHECK(header_of(idx, "Referrer-Policy") == "no-referrer");
  CHECK(f.api->handle(f.req("GET", "/../etc/passwd"), f.t0).status == 404);
  CHECK(f.api->handle(f.req("POST", "/index.html"), f.t0).status == 405);
}

TEST_CASE("web: API routes run only after the Origin and CSRF checks, with the caller's session") {
  Fixture f;
  std::vector<std::string> seen;  // "METHOD user" per call that reached the routes
  Api api(f.opts, [&](const std::string& n) -> std::optional<store::User> {
    if (n == f.alice.name) return f.alice;
    return std::nullopt;
  }, [&](const Request& r, const Session* s) -> std::optional<Response> {
    if (!r.path.starts_with("/api/v1/domains")) return std::nullopt;
    seen.push_back(r.method + " " + (s ? s->user : "-"));
    return Response{};
  });
  Request login = f.req("POST", "/api/v1/session", R"({"user":"alice","password":"secret-pw"})");
  Response ok = api.handle(login, f.t0);
  REQUIRE(ok.status == 200);
  std::string csrf = nlohmann::json::parse(ok.body)["csrf_token"];

  Request patch = f.req("PATCH", "/api/v1/domains/acme.example", R"({"tls":"none"})");
  patch.headers["cookie"] = "mxg_session=" + cookie_value(ok);
  CHECK(api.handle(patch, f.t0).status == 403);  // no CSRF token
  patch.headers["x-csrf-token"] = csrf;
  patch.headers["origin"] = "https://evil.example";
  CHECK(api.handle(patch, f.t0).status == 403);
  CHECK(seen.empty());
  patch.headers["origin"] = "https://mx1.example.net";
  CHECK(api.handle(patch, f.t0).status == 200);
  Request anon = f.req("GET", "/api/v1/domains");
  CHECK(api.handle(anon, f.t0).status == 200);  // the route itself answers 401 for no session
  CHECK(api.handle(f.req("GET", "/api/v1/other"), f.t0).status == 404);
  CHECK(seen == std::vector<std::string>{"PATCH alice", "GET -"});
}

TEST_CASE("web: a password changed by someone else ends the session; the session that changed its own stays") {
  Fixture f;
  // A stand-in for the password endpoint: it gives alice the hash the body names.
  Api api(f.opts, [&](const std::string& n) -> std::optional<store::User> {
    if (n == f.alice.name) return f.alice;
    return std::nullopt;
  }, [&](const Request& r, const Session* s) -> std::optional<Response> {
    if (r.path != "/api/v1/users/alice/password") return std::nullopt;
    if (!s) return json_error(401, "not_logged_in", "not logged in");
    f.alice.password_hash = r.body;
    return Response{};
  });
  auto login = [&] {
    Response ok = api.handle(f.req("POST", "/api/v1/session", R"({"user":"alice","password":"secret-pw"})"), f.t0);
    REQUIRE(ok.status == 200);
    return std::pair{cookie_value(ok), nlohmann::json::parse(ok.body)["csrf_token"].get<std::string>()};
  };
  auto [one, csrf1] = login();
  auto [two, csrf2] = login();
  Request who = f.req("GET", "/api/v1/session");
  auto alive = [&](const std::string& sid) {
    who.headers["cookie"] = "mxg_session=" + sid;
    return api.handle(who, f.t0).status == 200;
  };
  CHECK(alive(one));
  CHECK(alive(two));

  // Session one changes alice's password: it stays, session two ends.
  Request change = f.req("POST", "/api/v1/users/alice/password", f.alice.password_hash + "-new");
  change.headers["cookie"] = "mxg_session=" + one;
  change.headers["x-csrf-token"] = csrf1;
  CHECK(api.handle(change, f.t0).status == 200);
  CHECK(alive(one));
  CHECK_FALSE(alive(two));

  // Changed elsewhere (an admin's reset, the console): session one ends too, for good.
  f.alice.password_hash += "-reset";
  CHECK_FALSE(alive(one));
  f.alice.password_hash.resize(f.alice.password_hash.size() - std::string("-reset").size());
  CHECK_FALSE(alive(one));
}

// A path is any bytes once percent-decoded, and the 404 quotes it: the JSON
// encoder threw on bytes that are not UTF-8 and took the server down.
TEST_CASE("web: an error quoting bytes that are not UTF-8 is still JSON") {
  Response r = json_error(404, "not_found", "no API at /api/v1/\x96mains\xff");
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  REQUIRE(j.is_object());
  CHECK(j["code"] == "not_found");
  CHECK(j["error"].get<std::string>().find("mains") != std::string::npos);
}

TEST_CASE("web: pages outside /api/ get the request and whether its Origin is this server's") {
  Fixture f;
  std::vector<std::string> seen;  // "METHOD path same_origin" per call that reached the pages
  Api api(f.opts, [](const std::string&) -> std::optional<store::User> { return std::nullopt; }, {},
          [&](const Request& r, bool same_origin) -> std::optional<Response> {
            if (!r.path.starts_with("/digest/")) return std::nullopt;
            seen.push_back(r.method + " " + r.path + (same_origin ? " same" : " other"));
            Response page;
            page.content_type = "text/html; charset=utf-8";
            page.headers.emplace_back("Referrer-Policy", "same-origin");
            return page;
          });
  Request post = f.req("POST", "/digest/release/t");
  Response r = api.handle(post, f.t0);
  CHECK(r.status == 200);
  // The page's own Referrer-Policy stays; the other security headers are added.
  CHECK(header_of(r, "Referrer-Policy") == "same-origin");
  CHECK(std::count_if(r.headers.begin(), r.headers.end(), [](const auto& h) { return h.first == "Referrer-Policy"; }) ==
        1);
  CHECK(header_of(r, "X-Frame-Options") == "DENY");
  post.headers["origin"] = "https://evil.example";
  api.handle(post, f.t0);
  post.headers.erase("origin");
  api.handle(post, f.t0);
  CHECK(api.handle(f.req("GET", "/"), f.t0).file == "/srv/static/index.html");  // not a page: a static file
  CHECK(seen == std::vector<std::string>{"POST /digest/release/t same", "POST /digest/release/t other",
                                         "POST /digest/release/t other"});
}
