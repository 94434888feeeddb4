// GET/POST /api/v1/domains/{d}/recipients, DELETE .../recipients/{address},
// POST .../recipients/import (a text body or {"text","file"});
// GET/POST /api/v1/domains/{d}/lists, DELETE .../lists/{list}/{kind}/{value}
// (the same under /api/v1/lists for the global lists);
// GET /api/v1/domains/{d}/mx-check. Objects carry the console's --json fields.
#include "recipients_api.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "domains_api.hpp"
#include "mxguard/admin/lists.hpp"
#include "mxguard/admin/mx_check.hpp"
#include "mxguard/admin/recipients.hpp"

namespace mxguard::web {

namespace {

constexpr std::string_view kDomains = "/api/v1/domains/";
constexpr std::string_view kGlobalLists = "/api/v1/lists";

// {"error","code","field"} plus, for a refused import, "lines":[{"line","problem"}].
Response refusal(const admin::Failure& f) {
  Response r = failure_response(f);
  if (f.lines.empty()) return r;
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(r.body);
  nlohmann::ordered_json lines = nlohmann::ordered_json::array();
  for (const auto& l : f.lines) lines.push_back({{"line", l.line}, {"problem", l.problem}});
  j["lines"] = lines;
  r.body = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  return r;
}

// {"address": "a"} or {"addresses": ["a", "b"]}: local parts or addresses in the domain.
admin::Outcome<admin::RecipientInput> recipient_input(const Request& req, const std::string& domain) {
  auto body = object_body(req);
  if (!body) return body.failure();
  admin::RecipientInput in;
  in.domain = domain;
  for (const auto& [key, value] : body->items()) {
    if (key == "address") {
      if (!value.is_string()) return admin::usage("address: expected a string", "address");
      in.addresses.push_back(value.get<std::string>());
    } else if (key == "addresses") {
      bool ok = value.is_array();
      for (const auto& a : value) ok = ok && a.is_string();
      if (!ok) return admin::usage("addresses: expected a list of addresses", "addresses");
      for (const auto& a : value) in.addresses.push_back(a.get<std::string>());
    } else {
      return admin::usage(fmt::format("{}: unknown field (expected address or addresses)", key), key);
    }
  }
  return in;
}

// The text to import: the body itself, or {"text": ..., "file": name} as JSON.
admin::Outcome<std::pair<std::string, std::string>> import_input(const Request& req) {
  if (!req.header("content-type").starts_with("application/json")) return std::pair{req.body, std::string("upload")};
  auto body = object_body(req);
  if (!body) return body.failure();
  auto text = string_field(*body, "text");
  if (!text) return text.failure();
  auto file = string_field(*body, "file", "upload");
  if (!file) return file.failure();
  return std::pair{std::move(*text), std::move(*file)};
}

nlohmann::ordered_json change_json(const admin::RecipientChange& c, const char* key) {
  nlohmann::ordered_json j = admin::recipient_json(c.address, c.domain);
  j[key] = c.changed;
  return j;
}

admin::Outcome<admin::ListEntryInput> entry_input(const Request& req, const std::string& domain) {
  auto body = object_body(req);
  if (!body) return body.failure();
  admin::ListEntryInput in;
  in.domain = domain;
  for (const auto& [key, value] : body->items())
    if (key != "list" && key != "kind" && key != "value")
      return admin::usage(fmt::format("{}: unknown field (expected list, kind and value)", key), key);
  const std::pair<const char*, std::string*> fields[] = {{"list", &in.list}, {"kind", &in.kind}, {"value", &in.value}};
  for (const auto& [key, into] : fields) {
    auto v = string_field(*body, key);
    if (!v) return v.failure();
    *into = std::move(*v);
  }
  return in;
}

}  // namespace

std::optional<Response> RecipientsApi::handle(const Request& req, const Session* s) {
  std::string_view path = req.path;
  std::string domain;
  std::string_view section, rest;
  if (path == kGlobalLists || path.starts_with(std::string(kGlobalLists) + "/")) {
    section = "lists";
    rest = path.substr(kGlobalLists.size());
  } else if (path.starts_with(kDomains)) {
    std::string_view tail = path.substr(kDomains.size());
    size_t slash = tail.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    domain = std::string(tail.substr(0, slash));
    tail.remove_prefix(slash + 1);
    size_t end = tail.find('/');
    section = tail.substr(0, end);
    rest = end == std::string_view::npos ? "" : tail.substr(end);
    if (section != "recipients" && section != "lists" && section != "mx-check") return std::nullopt;
    // An empty name is not "the global list" here: it is refused by the library.
    if (domain.empty()) domain = "/";
  } else {
    return std::nullopt;
  }
  if (!s) return json_error(401, "not_logged_in", "not logged in");
  std::lock_guard lock(operations_mutex());
  auto p = session_principal(store_, *s);
  if (!p) return failure_response(p.failure());
  if (section == "recipients") return recipients(*p, req, domain, rest);
  if (section == "lists") return lists(*p, req, domain, rest);
  if (!rest.empty()) return json_error(404, "not_found", fmt::format("no API at {}", req.path));
  if (req.method != "GET") return json_error(405, "method_not_allowed", "GET");
  return mx_check(*p, domain);
}

Response RecipientsApi::recipients(const admin::Principal& p, const Request& req, const std::string& domain,
                                   std::string_view rest) {
  admin::Actor a{cfg_, store_, p};
  if (rest.empty() || rest == "/") {
    if (req.method == "GET") {
      auto all = admin::list_recipients(a, domain);
      if (!all) return refusal(all.failure());
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      for (const auto& r : all->addresses) list.push_back(admin::recipient_json(r, all->domain));
      return json_response(200, {{"domain", all->domain}, {"recipients", list}});
    }
    if (req.method == "POST") {
      auto in = recipient_input(req, domain);
      if (!in) return refusal(in.failure());
      auto changes = admin::add_recipients(a, *in);
      if (!changes) return refusal(changes.failure());
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      for (const auto& c : *changes) list.push_back(change_json(c, "added"));
      return json_response(200, {{"recipients", list}});
    }
    return json_error(405, "method_not_allowed", "GET or POST");
  }
  rest.remove_prefix(1);
  if (rest == "import") {
    if (req.method != "POST") return json_error(405, "method_not_allowed", "POST");
    auto in = import_input(req);
    if (!in) return refusal(in.failure());
    auto imported = admin::import_recipients(a, domain, in->first, in->second);
    if (!imported) return refusal(imported.failure());
    return json_response(200, {{"domain", imported->domain},
                               {"file", imported->source},
                               {"addresses", imported->addresses},
                               {"new", imported->added}});
  }
  if (req.method != "DELETE") return json_error(405, "method_not_allowed", "DELETE");
  auto changes = admin::remove_recipients(a, {domain, {std::string(rest)}});
  if (!changes) return refusal(changes.failure());
  return json_response(200, change_json(changes->front(), "removed"));
}

Response RecipientsApi::lists(const admin::Principal& p, const Request& req, const std::string& domain,
                              std::string_view rest) {
  admin::Actor a{cfg_, store_, p};
  if (rest.empty() || rest == "/") {
    if (req.method == "GET") {
      nlohmann::ordered_json out = {{"scope", domain.empty() ? "global" : domain}};
      for (const char* list : {"allow", "block"}) {
        auto shown = admin::show_list(a, list, domain);
        if (!shown) return refusal(shown.failure());
        nlohmann::ordered_json entries = nlohmann::ordered_json::array();
        for (const auto& e : shown->entries) entries.push_back(admin::list_entry_json(e));
        out["scope"] = shown->scope.empty() ? "global" : shown->scope;
        out[list] = entries;
      }
      return json_response(200, out);
    }
    if (req.method == "POST") {
      auto in = entry_input(req, domain);
      if (!in) return refusal(in.failure());
      auto c = admin::add_list_entry(a, *in);
      if (!c) return refusal(c.failure());
      nlohmann::ordered_json j = admin::list_entry_json(c->entry);
      j["added_now"] = c->changed;
      return json_response(c->changed ? 201 : 200, j);
    }
    return json_error(405, "method_not_allowed", "GET or POST");
  }
  // /{list}/{kind}/{value}: the value is the rest of the path, so a CIDR
  // block's slash stays in it.
  if (req.method != "DELETE") return json_error(405, "method_not_allowed", "DELETE");
  rest.remove_prefix(1);
  admin::ListEntryInput in;
  in.domain = domain;
  size_t slash = rest.find('/');
  in.list = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) {
    rest.remove_prefix(slash + 1);
    slash = rest.find('/');
    in.kind = std::string(rest.substr(0, slash));
    if (slash != std::string_view::npos) in.value = std::string(rest.substr(slash + 1));
  }
  auto c = admin::remove_list_entry(a, in);
  if (!c) return refusal(c.failure());
  nlohmann::ordered_json j = admin::list_entry_json(c->entry);
  j.erase("added");
  j["removed"] = true;
  return json_response(200, j);
}

// 200 whatever the MX set looks like: "ok" and "warnings" say how it is;
// "records" is the MX set to publish.
Response RecipientsApi::mx_check(const admin::Principal& p, const std::string& domain) {
  auto c = admin::check_mx({cfg_, store_, p}, domain);
  if (!c) return refusal(c.failure());
  nlohmann::ordered_json j = admin::mx_report_json(*c);
  nlohmann::ordered_json records = nlohmann::ordered_json::array();
  for (const auto& r : c->records)
    records.push_back({{"type", "MX"}, {"name", c->domain.name}, {"preference", r.preference}, {"host", r.host}});
  j["records"] = records;
  return json_response(200, j);
}

}  // namespace mxguard::web
