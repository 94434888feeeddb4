// /api/v1/domains over the admin library: each handler turns JSON into the
// operation's typed input and its result (or Failure) into JSON. No check
// lives here; permission and validation are the library's.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "mxguard/admin/access.hpp"
#include "mxguard/admin/failure.hpp"
#include "mxguard/core/config.hpp"
#include "mxguard/store/config_store.hpp"
#include "web_core.hpp"

namespace mxguard::web {

// {"error": message, "code": category, "field": ...} with the category's status.
Response failure_response(const admin::Failure& f);

// What every API handler shares: JSON in and out, and the session's principal.
Response json_response(unsigned status, const nlohmann::ordered_json& j);
// The body as a JSON object, or a usage failure.
admin::Outcome<nlohmann::json> object_body(const Request& req);
// A string field (absent: `fallback`); numbers are not strings here.
admin::Outcome<std::string> string_field(const nlohmann::json& j, const char* key, std::string fallback = {});
admin::Outcome<bool> bool_field(const nlohmann::json& j, const char* key);
// The principal of a session's user, read from the store for each request;
// a removed user's session answers 401 through failure_response.
inline constexpr std::string_view kNotLoggedIn = "(session)";
admin::Outcome<admin::Principal> session_principal(const store::ConfigStore& store, const Session& s);

// Every API handler runs its operation under this one lock: operations run
// one at a time, as console commands do against each other's write lock, and
// a spool's LMDB environment is opened by one operation at a time (LMDB
// allows one open of an environment per process).
std::mutex& operations_mutex();

class DomainsApi {
 public:
  DomainsApi(const Config& cfg, store::ConfigStore& store) : cfg_(cfg), store_(store) {}
  // The response for a /api/v1/domains request by session `s` (null: not
  // logged in, 401), or nullopt when the path is not this API's.
  std::optional<Response> handle(const Request& req, const Session* s);

 private:
  Response list(const admin::Principal& p);
  Response add(const admin::Principal& p, const Request& req);
  Response show(const admin::Principal& p, const std::string& domain);
  Response patch(const admin::Principal& p, const std::string& domain, const Request& req);
  Response remove(const admin::Principal& p, const std::string& domain);
  Response verify(const admin::Principal& p, const std::string& domain);

  const Config& cfg_;
  store::ConfigStore& store_;
};

}  // namespace mxguard::web
