// The domain endpoints of DESIGN.md section 4: GET/POST /api/v1/domains,
// GET/PATCH/DELETE /api/v1/domains/{d}, POST /api/v1/domains/{d}/verify.
#include "domains_api.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "mxguard/admin/domains.hpp"

namespace mxguard::web {

namespace {
constexpr std::string_view kPrefix = "/api/v1/domains";
}  // namespace

Response json_response(unsigned status, const nlohmann::ordered_json& j) {
  Response r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  return r;
}

admin::Outcome<nlohmann::json> object_body(const Request& req) {
  nlohmann::json j = nlohmann::json::parse(req.body, nullptr, false);
  if (!j.is_object()) return admin::usage("the request body must be a JSON object");
  return j;
}

admin::Outcome<std::string> string_field(const nlohmann::json& j, const char* key, std::string fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string()) return admin::usage(fmt::format("{}: expected a string", key), key);
  return it->get<std::string>();
}

admin::Outcome<bool> bool_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) return admin::usage(fmt::format("{}: expected true or false", key), key);
  return it->get<bool>();
}

std::mutex& operations_mutex() {
  static std::mutex mu;
  return mu;
}

Response failure_response(const admin::Failure& f) {
  if (f.category == admin::Category::kNotFound && f.field == kNotLoggedIn)
    return json_error(401, "not_logged_in", f.message);
  const admin::CategoryInfo& info = admin::category_info(f.category);
  nlohmann::ordered_json j = {{"error", f.message}, {"code", info.name}};
  if (!f.field.empty()) j["field"] = f.field;
  return json_response(info.http_status, j);
}

admin::Outcome<admin::Principal> session_principal(const store::ConfigStore& store, const Session& s) {
  // The principal is read again for every request: a changed role or a
  // removed user takes effect at once, not at the next login.
  auto p = admin::user_principal(store, s.user);
  if (!p && p.failure().category == admin::Category::kNotFound) {
    admin::Failure f = admin::not_found("the session's user no longer exists");
    f.field = std::string(kNotLoggedIn);
    return f;
  }
  return p;
}

std::optional<Response> DomainsApi::handle(const Request& req, const Session* s) {
  std::string_view path = req.path;
  if (!path.starts_with(kPrefix)) return std::nullopt;
  std::string_view rest = path.substr(kPrefix.size());
  if (!rest.empty() && rest.front() != '/') return std::nullopt;
  if (!s) return json_error(401, "not_logged_in", "not logged in");
  std::lock_guard lock(operations_mutex());
  auto p = session_principal(store_, *s);
  if (!p) return failure_response(p.failure());
  if (rest.empty() || rest == "/") {
    if (req.method == "GET") return list(*p);
    if (req.method == "POST") return add(*p, req);
    return json_error(405, "method_not_allowed", "GET or POST");
  }
  rest.remove_prefix(1);
  size_t slash = rest.find('/');
  std::string domain(rest.substr(0, slash));
  std::string_view action = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (action.empty()) {
    if (req.method == "GET") return show(*p, domain);
    if (req.method == "PATCH") return patch(*p, domain, req);
    if (req.method == "DELETE") return remove(*p, domain);
    return json_error(405, "method_not_allowed", "GET, PATCH or DELETE");
  }
  if (action == "verify") {
    if (req.method == "POST") return verify(*p, domain);
    return json_error(405, "method_not_allowed", "POST");
  }
  return json_error(404, "not_found", fmt::format("no API at {}", req.path));
}

Response DomainsApi::list(const admin::Principal& p) {
  auto domains = admin::list_domains({cfg_, store_, p});
  if (!domains) return failure_response(domains.failure());
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& d : *domains) out.push_back(admin::domain_json(cfg_, d));
  return json_response(200, {{"domains", out}});
}

Response DomainsApi::add(const admin::Principal& p, const Request& req) {
  auto body = object_body(req);
  if (!body) return failure_response(body.failure());
  admin::NewDomain in;
  // A tenant's own customer is the natural default; operators must name one.
  struct Field {
    const char* key;
    std::string* into;
  };
  const Field fields[] = {{"domain", &in.domain},       {"customer", &in.customer}, {"backend", &in.backend},
                          {"recipients", &in.recipients}, {"tls", &in.tls},           {"trust", &in.trust},
                          {"auth_user", &in.auth_user}};
  in.customer = p.customer;
  for (const Field& f : fields) {
    auto v = string_field(*body, f.key, *f.into);
    if (!v) return failure_response(v.failure());
    *f.into = std::move(*v);
  }
  auto pw = string_field(*body, "auth_password");
  if (!pw) return failure_response(pw.failure());
  if (!pw->empty()) in.auth_password = std::move(*pw);
  auto active = bool_field(*body, "active"), force = bool_field(*body, "force");
  if (!active) return failure_response(active.failure());
  if (!force) return failure_response(force.failure());
  in.active = *active;
  in.force = *force;
  auto added = admin::add_domain({cfg_, store_, p}, in);
  if (!added) return failure_response(added.failure());
  nlohmann::ordered_json j = admin::domain_json(cfg_, added->domain);
  j["customer_created"] = added->customer_created;
  return json_response(201, j);
}

Response DomainsApi::show(const admin::Principal& p, const std::string& domain) {
  auto d = admin::show_domain({cfg_, store_, p}, domain);
  if (!d) return failure_response(d.failure());
  return json_response(200, admin::domain_json(cfg_, *d));
}

// {settings as in `domain set`}: each key of kSettingKeys with a string or
// number value, "auth_password" (blank keeps the stored one) and "force".
Response DomainsApi::patch(const admin::Principal& p, const std::string& domain, const Request& req) {
  auto body = object_body(req);
  if (!body) return failure_response(body.failure());
  admin::DomainSettings in;
  for (const auto& [key, value] : body->items()) {
    if (key == "force") {
      auto f = bool_field(*body, "force");
      if (!f) return failure_response(f.failure());
      in.force = *f;
    } else if (key == "auth_password") {
      auto pw = string_field(*body, "auth_password");
      if (!pw) return failure_response(pw.failure());
      // Blank keeps the stored password: the form sends what the field holds.
      in.password_given = !pw->empty();
      in.auth_password = std::move(*pw);
    } else if (value.is_string()) {
      in.assignments.push_back(key + "=" + value.get<std::string>());
    } else if (value.is_number()) {
      in.assignments.push_back(key + "=" + value.dump());
    } else {
      return failure_response(admin::usage(fmt::format("{}: expected a string or a number", key), key));
    }
  }
  auto d = admin::set_domain({cfg_, store_, p}, domain, in);
  if (!d) return failure_response(d.failure());
  return json_response(200, admin::domain_json(cfg_, *d));
}

Response DomainsApi::remove(const admin::Principal& p, const std::string& domain) {
  auto d = admin::remove_domain({cfg_, store_, p}, domain);
  if (!d) return failure_response(d.failure());
  nlohmann::ordered_json j = admin::domain_json(cfg_, *d);
  j["removed"] = true;
  return json_response(200, j);
}

// Runs the DNS lookup; a domain not verified yet is a result (200, "result"
// says why), not an error.
Response DomainsApi::verify(const admin::Principal& p, const std::string& domain) {
  auto v = admin::verify_domain({cfg_, store_, p}, domain);
  if (!v) return failure_response(v.failure());
  return json_response(200, admin::verification_json(*v));
}

}  // namespace mxguard::web
