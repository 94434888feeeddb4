// GET /api/v1/quarantine?domain=&recipient=&search=&since=&until=&limit=&before=
// (newest first, one page: {"messages":[...],"next":cursor or null}),
// GET /api/v1/quarantine/{id} (as `quarantine show --json`),
// POST /api/v1/quarantine/{id}/release {"recipients","allow_sender"} and
// /delete {"recipients","learn_spam"}; GET /api/v1/me (who is logged in).
#include "quarantine_api.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "domains_api.hpp"
#include "mxguard/admin/quarantine.hpp"

namespace mxguard::web {

namespace {

constexpr std::string_view kPrefix = "/api/v1/quarantine";

// The optional JSON object body of an action: empty means {}.
admin::Outcome<nlohmann::json> action_body(const Request& req) {
  if (req.body.empty()) return nlohmann::json::object();
  return object_body(req);
}

admin::Outcome<admin::QuarantineAction> action_input(const Request& req, std::string id, bool release) {
  auto body = action_body(req);
  if (!body) return body.failure();
  admin::QuarantineAction in;
  in.id = std::move(id);
  for (const auto& [key, value] : body->items()) {
    if (key == "recipients") {
      bool ok = value.is_array() || value.is_null();
      if (value.is_array())
        for (const auto& r : value) ok = ok && r.is_string();
      if (!ok) return admin::usage("recipients: expected a list of addresses", "recipients");
      if (value.is_array())
        for (const auto& r : value) in.recipients.push_back(r.get<std::string>());
    } else if (release && key == "allow_sender") {
      auto b = bool_field(*body, "allow_sender");
      if (!b) return b.failure();
      in.allow_sender = *b;
    } else if (!release && key == "learn_spam") {
      auto b = bool_field(*body, "learn_spam");
      if (!b) return b.failure();
      in.learn_spam = *b;
    } else {
      return admin::usage(fmt::format("{}: unknown field (expected recipients or {})", key,
                                      release ? "allow_sender" : "learn_spam"),
                          key);
    }
  }
  return in;
}

Response me(const admin::Principal& p, const Session& s, const store::ConfigStore& store) {
  nlohmann::ordered_json j = {{"user", p.name}, {"role", store::to_string(p.role)}, {"customer", p.customer},
                              {"domain", p.domain}, {"csrf_token", s.csrf_token}};
  if (p.role == store::Role::kUser) {
    auto u = store.user(p.name);
    if (u && *u) {
      j["address"] = (*u)->address;
      j["shadows"] = (*u)->shadows;
    }
  }
  return json_response(200, j);
}

}  // namespace

std::optional<Response> QuarantineApi::handle(const Request& req, const Session* s) {
  std::string_view path = req.path;
  bool is_me = path == "/api/v1/me";
  std::string_view rest;
  if (!is_me) {
    if (!path.starts_with(kPrefix)) return std::nullopt;
    rest = path.substr(kPrefix.size());
    if (!rest.empty() && rest.front() != '/') return std::nullopt;
  }
  if (!s) return json_error(401, "not_logged_in", "not logged in");
  std::lock_guard lock(operations_mutex());
  auto p = session_principal(store_, *s);
  if (!p) return failure_response(p.failure());
  const admin::Actor actor{cfg_, store_, *p};
  if (is_me) {
    if (req.method != "GET") return json_error(405, "method_not_allowed", "GET");
    return me(*p, *s, store_);
  }
  if (rest.empty() || rest == "/") {
    if (req.method != "GET") return json_error(405, "method_not_allowed", "GET");
    admin::QuarantineFilter f{std::string(req.param("domain")), std::string(req.param("recipient")),
                              std::string(req.param("search")), std::string(req.param("since")),
                              std::string(req.param("until"))};
    auto page = admin::quarantine_page(actor, f, {std::string(req.param("limit")), std::string(req.param("before"))});
    if (!page) return failure_response(page.failure());
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& h : page->rows) out.push_back(admin::quarantine_json(h.record, h.visible));
    nlohmann::ordered_json next = nullptr;
    if (!page->next.empty()) next = page->next;
    return json_response(200, {{"messages", out}, {"next", next}});
  }
  rest.remove_prefix(1);
  size_t slash = rest.find('/');
  std::string id(rest.substr(0, slash));
  std::string_view action = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (action.empty()) {
    if (req.method != "GET") return json_error(405, "method_not_allowed", "GET");
    auto m = admin::show_quarantined(actor, id);
    if (!m) return failure_response(m.failure());
    return json_response(200, admin::shown_json(*m));
  }
  if (action != "release" && action != "delete") return json_error(404, "not_found", fmt::format("no API at {}", req.path));
  if (req.method != "POST") return json_error(405, "method_not_allowed", "POST");
  bool release = action == "release";
  auto in = action_input(req, id, release);
  if (!in) return failure_response(in.failure());
  if (release) {
    auto r = admin::release_quarantined(actor, *in);
    if (!r) return failure_response(r.failure());
    return json_response(200, {{"id", r->id},
                               {"queued_id", r->queued_id},
                               {"recipients", r->recipients},
                               {"allowed_sender_in", r->allowed_in}});
  }
  auto d = admin::delete_quarantined(actor, *in);
  if (!d) return failure_response(d.failure());
  nlohmann::ordered_json j = {{"id", d->id}, {"recipients", d->recipients}, {"learned_spam", d->learned_spam}};
  if (d->unreadable) j["unreadable"] = true;
  return json_response(200, j);
}

}  // namespace mxguard::web
