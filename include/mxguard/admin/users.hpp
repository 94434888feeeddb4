// The user operations behind `mxguard user ...` and `mxguard audit`: accounts
// with roles, scoped to what the principal may manage.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/admin/domains.hpp"

namespace mxguard::admin {

struct NewUser {
  std::string name, role, customer, domain, address;
  std::vector<std::string> shadows;
  std::optional<std::string> password;  // the front end read it; at least 8 characters
};

Outcome<store::User> add_user(const Actor& a, const NewUser& in);
// The users the principal may see: all for operators, their customer's for customer-admins.
Outcome<std::vector<store::User>> list_users(const Actor& a);
// The user as it was before it was removed.
Outcome<store::User> remove_user(const Actor& a, std::string_view name);
// Whether the principal may set `name`'s password: checked before the
// front end asks for it, and again by set_password.
Outcome<store::User> password_target(const Actor& a, std::string_view name);
Outcome<store::User> set_password(const Actor& a, std::string_view name, std::string password);
Outcome<std::vector<store::AuditEntry>> audit_log(const Actor& a);
// `user set NAME KEY=VALUE...`: settings a user has (for now `digest=on|off`,
// their daily quarantine digest). Operators, their customer's admins and the
// user themself may change them; every pair is checked before anything is written.
Outcome<store::User> set_user_settings(const Actor& a, std::string_view name, const std::vector<std::string>& pairs);

// {"name","role","customer","domain","address","shadows","has_password","digest","created"}: never the hash.
nlohmann::ordered_json user_json(const store::User& u);

}  // namespace mxguard::admin
