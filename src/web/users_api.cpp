// GET/POST /api/v1/users, GET/PATCH/DELETE /api/v1/users/{name},
// POST /api/v1/users/{name}/password, GET /api/v1/audit?since=&until=&limit=.
// Passwords come in, are handed to the library and wiped; none goes out or
// into a log line.
#include "users_api.hpp"

#include <sodium.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "domains_api.hpp"
#include "mxguard/admin/users.hpp"

namespace mxguard::web {

namespace {

constexpr std::string_view kUsers = "/api/v1/users";
constexpr std::string_view kAudit = "/api/v1/audit";

// A list of strings; absent or null: nullopt.
admin::Outcome<std::optional<std::vector<std::string>>> strings_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::vector<std::string>>{};
  bool ok = it->is_array();
  if (ok)
    for (const auto& v : *it) ok = ok && v.is_string();
  if (!ok) return admin::usage(fmt::format("{}: expected a list of addresses", key), key);
  return std::optional<std::vector<std::string>>(it->get<std::vector<std::string>>());
}

// Fields not in `known` are refused by name, so a typo is not silently ignored.
admin::Outcome<bool> only_fields(const nlohmann::json& j, std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : j.items()) {
    bool found = false;
    for (auto k : known) found = found || key == k;
    if (!found) {
      std::string names;
      for (auto k : known) names += (names.empty() ? "" : ", ") + std::string(k);
      return admin::usage(fmt::format("{}: unknown field (expected {})", key, names), key);
    }
  }
  return true;
}

struct WipedBody {
  nlohmann::json j;
  ~WipedBody() {
    for (const char* k : {"password", "current"})
      if (auto it = j.find(k); it != j.end() && it->is_string()) {
        auto& s = it->get_ref<std::string&>();
        sodium_memzero(s.data(), s.size());
      }
  }
};

nlohmann::ordered_json roles_json(const std::vector<store::Role>& roles) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (store::Role r : roles) out.push_back(store::to_string(r));
  return out;
}

Response list(const admin::Actor& a) {
  auto users = admin::list_users(a);
  if (!users) return failure_response(users.failure());
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& u : *users) out.push_back(admin::user_json(u));
  return json_response(200, {{"users", out}, {"creatable_roles", roles_json(admin::creatable_roles(a.principal))}});
}

// {"name","role","customer","domain","address","shadows":[...],"password"}
Response add(const admin::Actor& a, const Request& req) {
  auto body = object_body(req);
  if (!body) return failure_response(body.failure());
  WipedBody wiped{std::move(*body)};
  const nlohmann::json& j = wiped.j;
  if (auto k = only_fields(j, {"name", "role", "customer", "domain", "address", "shadows", "password"}); !k)
    return failure_response(k.failure());
  admin::NewUser in;
  // A customer-admin's users are their customer's unless they say otherwise.
  in.customer = a.principal.customer;
  struct Field {
    const char* key;
    std::string* into;
  };
  for (const Field& f : {Field{"name", &in.name}, Field{"role", &in.role}, Field{"customer", &in.customer},
                         Field{"domain", &in.domain}, Field{"address", &in.address}}) {
    auto v = string_field(j, f.key, *f.into);
    if (!v) return failure_response(v.failure());
    *f.into = std::move(*v);
  }
  auto shadows = strings_field(j, "shadows");
  if (!shadows) return failure_response(shadows.failure());
  if (*shadows) in.shadows = std::move(**shadows);
  auto pw = string_field(j, "password");
  if (!pw) return failure_response(pw.failure());
  if (!pw->empty()) in.password = std::move(*pw);
  auto u = admin::add_user(a, in);
  if (in.password) sodium_memzero(in.password->data(), in.password->size());
  if (!u) return failure_response(u.failure());
  return json_response(201, admin::user_json(*u));
}

Response show(const admin::Actor& a, const std::string& name) {
  auto u = admin::show_user(a, name);
  if (!u) return failure_response(u.failure());
  return json_response(200, admin::user_json(*u));
}

// {"shadows": [...], "digest": "on"|"off"|true|false}
Response patch(const admin::Actor& a, const std::string& name, const Request& req) {
  // Who may see the user comes before the body (as in admin::set_user_settings),
  // so a refusal never depends on what is asked.
  if (auto seen = admin::show_user(a, name); !seen) return failure_response(seen.failure());
  auto body = object_body(req);
  if (!body) return failure_response(body.failure());
  if (auto k = only_fields(*body, {"shadows", "digest"}); !k) return failure_response(k.failure());
  admin::UserChanges in;
  if (auto it = body->find("digest"); it != body->end() && !it->is_null()) {
    if (it->is_boolean()) in.digest = it->get<bool>();
    else if (it->is_string() && (*it == "on" || *it == "off")) in.digest = *it == "on";
    else return failure_response(admin::usage("digest: expected \"on\" or \"off\"", "digest"));
  }
  auto shadows = strings_field(*body, "shadows");
  if (!shadows) return failure_response(shadows.failure());
  in.shadows = std::move(*shadows);
  auto u = admin::update_user(a, name, in);
  if (!u) return failure_response(u.failure());
  return json_response(200, admin::user_json(*u));
}

Response remove(const admin::Actor& a, const std::string& name) {
  auto u = admin::remove_user(a, name);
  if (!u) return failure_response(u.failure());
  nlohmann::ordered_json j = admin::user_json(*u);
  j["removed"] = true;
  return json_response(200, j);
}

// {"password"} (an admin's reset) or {"current","password"} (one's own).
Response password(const admin::Actor& a, const std::string& name, const Request& req) {
  auto body = object_body(req);
  if (!body) return failure_response(body.failure());
  WipedBody wiped{std::move(*body)};
  if (auto k = only_fields(wiped.j, {"current", "password"}); !k) return failure_response(k.failure());
  admin::PasswordChange in;
  in.name = name;
  auto pw = string_field(wiped.j, "password");
  if (!pw) return failure_response(pw.failure());
  in.password = std::move(*pw);
  if (wiped.j.contains("current") && !wiped.j["current"].is_null()) {
    auto cur = string_field(wiped.j, "current");
    if (!cur) return failure_response(cur.failure());
    in.current = std::move(*cur);
  }
  auto u = admin::change_password(a, std::move(in));
  if (!u) return failure_response(u.failure());
  return json_response(200, {{"name", u->name}, {"password_changed", true}});
}

Response audit(const admin::Actor& a, const Request& req) {
  admin::AuditFilter f{std::string(req.param("since")), std::string(req.param("until")),
                       std::string(req.param("limit"))};
  auto entries = admin::audit_log(a, f);
  if (!entries) return failure_response(entries.failure());
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  // Newest first: the page shows what just happened at the top.
  for (auto it = entries->rbegin(); it != entries->rend(); ++it) out.push_back(admin::audit_json(*it));
  return json_response(200, {{"entries", out}});
}

}  // namespace

std::optional<Response> UsersApi::handle(const Request& req, const Session* s) {
  std::string_view path = req.path;
  const bool is_audit = path == kAudit;
  std::string_view rest;
  if (!is_audit) {
    if (!path.starts_with(kUsers)) return std::nullopt;
    rest = path.substr(kUsers.size());
    if (!rest.empty() && rest.front() != '/') return std::nullopt;
  }
  if (!s) return json_error(401, "not_logged_in", "not logged in");
  std::lock_guard lock(operations_mutex());
  auto p = session_principal(store_, *s);
  if (!p) return failure_response(p.failure());
  const admin::Actor a{cfg_, store_, *p};
  if (is_audit) {
    if (req.method == "GET") return audit(a, req);
    return json_error(405, "method_not_allowed", "GET");
  }
  if (rest.empty() || rest == "/") {
    if (req.method == "GET") return list(a);
    if (req.method == "POST") return add(a, req);
    return json_error(405, "method_not_allowed", "GET or POST");
  }
  rest.remove_prefix(1);
  size_t slash = rest.find('/');
  std::string name(rest.substr(0, slash));
  std::string_view action = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (action.empty()) {
    if (req.method == "GET") return show(a, name);
    if (req.method == "PATCH") return patch(a, name, req);
    if (req.method == "DELETE") return remove(a, name);
    return json_error(405, "method_not_allowed", "GET, PATCH or DELETE");
  }
  if (action == "password") {
    if (req.method == "POST") return password(a, name, req);
    return json_error(405, "method_not_allowed", "POST");
  }
  return json_error(404, "not_found", fmt::format("no API at {}", req.path));
}

}  // namespace mxguard::web
