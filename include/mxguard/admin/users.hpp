// The user operations behind `mxguard user ...`, `mxguard audit` and
// /api/v1/users, /api/v1/audit: accounts with roles, scoped to what the
// principal may manage, and the audit log scoped to what it may read.
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

// The roles `p` may create, in the order a form offers them: operators
// every role; customer-admins and postmasters postmasters and users (a
// postmaster only for their own domain); users none.
std::vector<store::Role> creatable_roles(const Principal& p);

Outcome<store::User> add_user(const Actor& a, const NewUser& in);
// The users the principal may see: all for operators, their customer's for customer-admins.
Outcome<std::vector<store::User>> list_users(const Actor& a);
// One user: the principal themself, or one they may manage; anyone else is not_found.
Outcome<store::User> show_user(const Actor& a, std::string_view name);
// The user as it was before it was removed.
Outcome<store::User> remove_user(const Actor& a, std::string_view name);
// Whether the principal may set `name`'s password: checked before the
// front end asks for it, and again by set_password.
Outcome<store::User> password_target(const Actor& a, std::string_view name);
// An administrator setting a password (the console's `user passwd`, or a
// reset from the dashboard), without the old one.
Outcome<store::User> set_password(const Actor& a, std::string_view name, std::string password);

// A password change asked for over the web. Changing one's own password
// needs the current one (a session left open must not be enough to take the
// account over); resetting someone else's is set_password's rules and must
// not carry `current`.
struct PasswordChange {
  std::string name;
  std::optional<std::string> current;
  std::string password;
};
Outcome<store::User> change_password(const Actor& a, PasswordChange in);

// What a user's settings change: nullopt leaves it as it is.
struct UserChanges {
  std::optional<bool> digest;                            // users: their daily quarantine digest
  std::optional<std::vector<std::string>> shadows;       // users: further addresses seen as theirs
};
// Digest: the user themself, their customer's admins and operators.
// Shadows: customer-admins and operators, each address in one of the user's
// customer's domains (operators may name any domain). Everything is
// checked before anything is written; one audit entry with what changed.
Outcome<store::User> update_user(const Actor& a, std::string_view name, const UserChanges& in);
// `user set NAME KEY=VALUE...`: digest=on|off, shadows=ADDR[,ADDR...] (empty: none).
Outcome<store::User> set_user_settings(const Actor& a, std::string_view name, const std::vector<std::string>& pairs);

// The entries the principal may read (see may_read_audit), oldest first;
// users may read none. since/until in parse_time_arg forms; `limit` (as
// typed, 1..10000; empty: all) keeps the newest that many.
struct AuditFilter {
  std::string since, until, limit;
};
Outcome<std::vector<store::AuditEntry>> audit_log(const Actor& a, const AuditFilter& f = {});

// {"name","role","customer","domain","address","shadows","has_password","digest","created"}: never the hash.
nlohmann::ordered_json user_json(const store::User& u);
// {"time","principal","action","object","before","after","customer","domain"}.
nlohmann::ordered_json audit_json(const store::AuditEntry& e);

}  // namespace mxguard::admin
