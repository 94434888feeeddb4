// User and audit records (version byte + JSON).
#include "mxguard/store/accounts.hpp"

#include <nlohmann/json.hpp>

namespace mxguard::store {

namespace {
constexpr uint8_t kVersion = 1;
using nlohmann::json;

std::string versioned(const json& j) { return std::string(1, static_cast<char>(kVersion)) + j.dump(); }

Result<json> parse(std::string_view bytes, const char* what) {
  if (bytes.empty() || static_cast<uint8_t>(bytes[0]) != kVersion)
    return Error{std::string(what) + " record has an unsupported version"};
  json j = json::parse(bytes.substr(1), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error{std::string(what) + " record is corrupt"};
  return j;
}
}  // namespace

std::string_view to_string(Role r) {
  switch (r) {
    case Role::kOperator: return "operator";
    case Role::kCustomerAdmin: return "customer-admin";
    case Role::kPostmaster: return "postmaster";
    case Role::kUser: return "user";
  }
  return "?";
}

std::optional<Role> role_from_string(std::string_view s) {
  for (Role r : {Role::kOperator, Role::kCustomerAdmin, Role::kPostmaster, Role::kUser})
    if (to_string(r) == s) return r;
  return std::nullopt;
}

std::string encode_user(const User& u) {
  return versioned(json{{"name", u.name},
                        {"role", to_string(u.role)},
                        {"customer", u.customer},
                        {"domain", u.domain},
                        {"address", u.address},
                        {"shadows", u.shadows},
                        {"password_hash", u.password_hash},
                        {"digest", u.digest},
                        {"created_ms", u.created_ms}});
}

Result<User> decode_user(std::string_view bytes) {
  auto j = parse(bytes, "user");
  if (!j) return Error{j.error()};
  try {
    User u;
    u.name = j->at("name").get<std::string>();
    auto role = role_from_string(j->at("role").get<std::string>());
    if (!role) return Error{"user record has an unknown role"};
    u.role = *role;
    u.customer = j->value("customer", "");
    u.domain = j->value("domain", "");
    u.address = j->value("address", "");
    u.shadows = j->value("shadows", std::vector<std::string>{});
    u.password_hash = j->value("password_hash", "");
    // Added without a new record version: users stored before get digests.
    u.digest = j->value("digest", true);
    u.created_ms = j->value("created_ms", int64_t{0});
    return u;
  } catch (const json::exception& e) {
    return Error{std::string("user record is corrupt: ") + e.what()};
  }
}

std::string encode_audit(const AuditEntry& e) {
  return versioned(json{{"time_ms", e.time_ms},
                        {"principal", e.principal},
                        {"action", e.action},
                        {"object", e.object},
                        {"before", e.before},
                        {"after", e.after},
                        {"customer", e.customer},
                        {"domain", e.domain}});
}

Result<AuditEntry> decode_audit(std::string_view bytes) {
  auto j = parse(bytes, "audit");
  if (!j) return Error{j.error()};
  AuditEntry e;
  e.time_ms = j->value("time_ms", int64_t{0});
  e.principal = j->value("principal", "");
  e.action = j->value("action", "");
  e.object = j->value("object", "");
  e.before = j->value("before", "");
  e.after = j->value("after", "");
  // Added without a new record version: older entries have no owner.
  e.customer = j->value("customer", "");
  e.domain = j->value("domain", "");
  return e;
}

}  // namespace mxguard::store
