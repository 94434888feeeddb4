// libFuzzer target for mxguard-web's request handling: the input is one HTTP
// request as libmicrohttpd would hand it over (method, path, query, headers,
// body), run through web::Api with the real domains and quarantine APIs over
// an LMDB state dir of its own. Markers in the input stand for a live
// session's cookie and CSRF token, so the fuzzer reaches the handlers behind
// the login, not only the refusals in front of them.
//
// Input:  METHOD SP PATH [? QUERY] LF (NAME: VALUE LF)* LF BODY
//   "@SESSION" in a header value is replaced by the session's cookie value,
//   "@CSRF" by its CSRF token.
//
// What must hold for every input: a status the API documents, the security
// headers on every response, a JSON error object {"error","code"} for every
// refused /api request, and a static file only ever under the static root.
#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "domains_api.hpp"
#include "mxguard/core/config.hpp"
#include "mxguard/store/config_store.hpp"
#include "quarantine_api.hpp"
#include "web_core.hpp"

using namespace mxguard;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

struct World {
  Config cfg;
  std::unique_ptr<store::ConfigStore> store;
  std::unique_ptr<web::DomainsApi> domains;
  std::unique_ptr<web::QuarantineApi> quarantine;
  std::unique_ptr<web::Api> api;
  web::Session session;
  std::string root;

  World() {
    require(sodium_init() >= 0);
    char tmpl[] = "/tmp/fuzz_web.XXXXXX";
    require(mkdtemp(tmpl) != nullptr);
    cfg.state_dir = tmpl;
    root = std::string(tmpl) + "/static";
    std::filesystem::create_directories(root);
    auto st = store::ConfigStore::open(cfg.state_dir);
    require(static_cast<bool>(st));
    store = std::move(*st);
    store::Domain d;
    d.name = "acme.example";
    d.customer = "acme";
    d.status = store::DomainStatus::kActive;
    d.backend_host = "127.0.0.1";
    require(static_cast<bool>(store->add_domain(d, true)));
    store::User u;
    u.name = "alice";
    u.role = store::Role::kCustomerAdmin;
    u.customer = "acme";
    require(static_cast<bool>(store->add_user(u)));

    web::ApiOptions opts;
    opts.public_url = "https://mx1.example.net";
    opts.static_dir = root;
    domains = std::make_unique<web::DomainsApi>(cfg, *store);
    quarantine = std::make_unique<web::QuarantineApi>(cfg, *store);
    store::ConfigStore* s = store.get();
    api = std::make_unique<web::Api>(
        opts,
        [s](const std::string& name) -> std::optional<store::User> {
          auto u = s->user(name);
          return u && *u ? std::optional<store::User>(**u) : std::nullopt;
        },
        [this](const web::Request& req, const web::Session* s) -> std::optional<web::Response> {
          if (auto r = domains->handle(req, s)) return r;
          if (auto r = quarantine->handle(req, s)) return r;
          return std::nullopt;
        });
    // A session that never expires within a run.
    session = api->sessions().create("alice", store::Role::kCustomerAdmin, web::Clock::now());
  }
};

std::string substitute(std::string v, const World& w) {
  for (auto [marker, value] : {std::pair<std::string_view, std::string_view>{"@SESSION", w.session.id},
                               {"@CSRF", w.session.csrf_token}}) {
    for (size_t at = v.find(marker); at != std::string::npos; at = v.find(marker, at + value.size()))
      v.replace(at, marker.size(), value);
  }
  return v;
}

web::Request parse(std::string_view in, const World& w) {
  web::Request r;
  r.client = "192.0.2.1";
  size_t eol = in.find('\n');
  std::string_view first = in.substr(0, eol);
  in = eol == std::string_view::npos ? std::string_view{} : in.substr(eol + 1);
  size_t sp = first.find(' ');
  r.method = std::string(first.substr(0, sp));
  std::string_view target = sp == std::string_view::npos ? std::string_view{} : first.substr(sp + 1);
  size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      size_t eq = pair.find('=');
      r.query.emplace(std::string(pair.substr(0, eq)),
                      eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1)));
      query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    }
  }
  while (!in.empty()) {
    eol = in.find('\n');
    std::string_view line = in.substr(0, eol);
    in = eol == std::string_view::npos ? std::string_view{} : in.substr(eol + 1);
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    r.headers.emplace(std::move(name), substitute(std::string(value), w));
  }
  r.body = std::string(in);
  return r;
}

bool documented(unsigned status) {
  for (unsigned s : {200u, 201u, 400u, 401u, 403u, 404u, 405u, 409u, 413u, 429u, 503u})
    if (status == s) return true;
  return false;
}

bool has_header(const web::Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name && !v.empty()) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World w;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  web::Request req = parse(in, w);
  web::Response r = w.api->handle(req, web::Clock::now());
  require(documented(r.status));
  require(has_header(r, "Content-Security-Policy") && has_header(r, "X-Content-Type-Options"));
  bool api = req.path == "/api" || req.path.starts_with("/api/");
  if (api && r.status >= 400) {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    require(j.is_object() && j.contains("error") && j["error"].is_string() && j.contains("code") &&
            j["code"].is_string());
  }
  if (!r.file.empty()) {
    require(!api && r.file.starts_with(w.root + "/"));
    require(r.file.find("/../") == std::string::npos && r.file.find('\0') == std::string::npos);
  }
  // The cookie and path helpers on the raw input too.
  auto cookies = web::parse_cookies(in);
  for (const auto& [k, v] : cookies) require(k.find(';') == std::string::npos && v.find(';') == std::string::npos);
  if (auto p = web::static_file_path(w.root, in)) require(p->starts_with(w.root + "/"));
  return 0;
}
