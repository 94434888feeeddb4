// User accounts and roles. Passwords are Argon2id hashes (libsodium), wiped
// from memory once hashed and never returned.
#include "mxguard/admin/users.hpp"

#include <sodium.h>

#include <fmt/format.h>

#include "mxguard/admin/onboarding.hpp"
#include "mxguard/admin/text.hpp"
#include "mxguard/admin/validate.hpp"

namespace mxguard::admin {

namespace {

Result<std::string> hash_password(std::string& pw) {
  if (sodium_init() < 0) return Error{"libsodium failed to initialise"};
  char out[crypto_pwhash_STRBYTES];
  int rc = crypto_pwhash_str_alg(out, pw.data(), pw.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                 crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13);
  sodium_memzero(pw.data(), pw.size());
  if (rc != 0) return Error{"out of memory while hashing the password"};
  return std::string(out);
}

Status check_password(const std::string& pw) {
  if (pw.size() < 8) return Error{"password must have at least 8 characters"};
  return {};
}

bool may_see_user(const Principal& p, const store::User& u) {
  return is_operator(p) || (p.role == store::Role::kCustomerAdmin && u.customer == p.customer &&
                            u.role != store::Role::kOperator);
}

// Builds and checks the new user against the store and the principal's rights.
Outcome<store::User> user_from(const NewUser& o, const Actor& a) {
  const Principal& p = a.principal;
  store::User u;
  if (auto s = check_customer_name(o.name); !s) return usage(fmt::format("user name: {}", s.error()), "name");
  u.name = o.name;
  auto role = store::role_from_string(o.role);
  if (!role) return usage(fmt::format("unknown role '{}' (operator, customer-admin, postmaster, user)", o.role), "role");
  u.role = *role;
  u.shadows = o.shadows;
  switch (u.role) {
    case store::Role::kOperator:
      break;
    case store::Role::kCustomerAdmin: {
      if (o.customer.empty()) return usage("a customer-admin needs --customer", "customer");
      auto c = a.store.customer(o.customer);
      if (!c) return unavailable(c.error());
      if (!*c || !may_manage_customer(p, o.customer)) {
        if (is_operator(p)) return not_found(fmt::format("no such customer: {}", o.customer));
        return out_of_scope("customer", o.customer);
      }
      u.customer = o.customer;
      break;
    }
    case store::Role::kPostmaster:
    case store::Role::kUser: {
      std::string domain = o.domain;
      if (u.role == store::Role::kUser) {
        size_t at = o.address.rfind('@');
        if (at == std::string::npos || at == 0) return usage("a user needs --address local@domain", "address");
        domain = o.address.substr(at + 1);
        u.address = o.address;
      } else if (domain.empty()) {
        return usage("a postmaster needs --domain", "domain");
      }
      auto d = show_domain(a, domain);
      if (!d) return d.failure();
      u.customer = d->customer;
      if (u.role == store::Role::kPostmaster) u.domain = d->name;
      break;
    }
  }
  // Only operators create operators and customer-admins.
  if (!is_operator(p) && (u.role == store::Role::kOperator || u.role == store::Role::kCustomerAdmin))
    return forbidden(fmt::format("creating a {}", store::to_string(u.role)));
  return u;
}

}  // namespace

nlohmann::ordered_json user_json(const store::User& u) {
  return {{"name", u.name},       {"role", store::to_string(u.role)}, {"customer", u.customer},
          {"domain", u.domain},   {"address", u.address},           {"shadows", u.shadows},
          {"has_password", !u.password_hash.empty()}, {"digest", u.digest ? "on" : "off"},
          {"created", iso8601(u.created_ms)}};
}

Outcome<store::User> add_user(const Actor& a, const NewUser& in) {
  auto u = user_from(in, a);
  if (!u) return u;
  if (in.password) {
    std::string pw = *in.password;
    if (auto s = check_password(pw); !s) return usage(s.error(), "password");
    auto hash = hash_password(pw);
    if (!hash) return unavailable(hash.error());
    u->password_hash = std::move(*hash);
  }
  u->created_ms = now_ms();
  auto added = a.store.add_user(*u);
  if (!added) return unavailable(added.error());
  if (!*added) return conflict(fmt::format("user {} already exists", u->name));
  if (auto s = audit(a.store, a.principal, "user.add", u->name, nullptr, user_json(*u)); !s)
    return unavailable(s.error());
  return u;
}

Outcome<std::vector<store::User>> list_users(const Actor& a) {
  if (!is_operator(a.principal) && a.principal.role != store::Role::kCustomerAdmin) return forbidden("listing users");
  auto users = a.store.users();
  if (!users) return unavailable(users.error());
  std::erase_if(*users, [&](const store::User& u) { return !may_see_user(a.principal, u); });
  return std::move(*users);
}

Outcome<store::User> remove_user(const Actor& a, std::string_view name) {
  auto u = a.store.user(name);
  if (!u) return unavailable(u.error());
  if (!*u || !may_see_user(a.principal, **u)) {
    if (is_operator(a.principal)) return not_found(fmt::format("no such user: {}", name));
    return out_of_scope("user", name);
  }
  if (!is_operator(a.principal) && (*u)->role == store::Role::kCustomerAdmin)
    return forbidden("removing a customer-admin");
  auto removed = a.store.remove_user(name);
  if (!removed) return unavailable(removed.error());
  if (auto s = audit(a.store, a.principal, "user.remove", name, user_json(**u), nullptr); !s)
    return unavailable(s.error());
  return std::move(**u);
}

// Another tenant's user is reported as missing, so the answer does not
// reveal that the name exists.
Outcome<store::User> password_target(const Actor& a, std::string_view name) {
  auto u = a.store.user(name);
  if (!u) return unavailable(u.error());
  if (!*u || !may_see_user(a.principal, **u)) return not_found(fmt::format("no such user: {}", name));
  if (!is_operator(a.principal) && (*u)->role == store::Role::kCustomerAdmin && (*u)->name != a.principal.name)
    return forbidden("changing another customer-admin's password");
  return std::move(**u);
}

Outcome<store::User> set_password(const Actor& a, std::string_view name, std::string password) {
  auto u = password_target(a, name);
  if (!u) return u;
  if (auto s = check_password(password); !s) return usage(s.error(), "password");
  auto hash = hash_password(password);
  if (!hash) return unavailable(hash.error());
  auto changed = a.store.set_user_password(name, *hash);
  if (!changed) return unavailable(changed.error());
  if (!*changed) return not_found(fmt::format("no such user: {}", name));
  if (auto s = audit(a.store, a.principal, "user.passwd", name, nullptr, {{"name", name}}); !s)
    return unavailable(s.error());
  u->password_hash = std::move(*hash);
  return u;
}

Outcome<std::vector<store::AuditEntry>> audit_log(const Actor& a) {
  if (!is_operator(a.principal)) return forbidden("reading the audit log");
  auto entries = a.store.audit();
  if (!entries) return unavailable(entries.error());
  return std::move(*entries);
}

Outcome<store::User> set_user_settings(const Actor& a, std::string_view name, const std::vector<std::string>& pairs) {
  auto u = a.store.user(name);
  if (!u) return unavailable(u.error());
  const bool self = *u && (*u)->name == a.principal.name;
  if (!*u || (!self && !may_see_user(a.principal, **u))) return not_found(fmt::format("no such user: {}", name));
  if (pairs.empty()) return usage("nothing to set (digest=on|off)");
  std::optional<bool> digest;
  for (const auto& p : pairs) {
    auto eq = p.find('=');
    std::string key = p.substr(0, eq);
    if (eq == std::string::npos) return usage(fmt::format("'{}' is not KEY=VALUE", printable(p)));
    std::string value = p.substr(eq + 1);
    if (key != "digest") return usage(fmt::format("unknown user setting '{}' (digest)", printable(key)), key);
    if (value != "on" && value != "off") return usage(fmt::format("digest must be on or off, not '{}'", printable(value)), "digest");
    if ((*u)->role != store::Role::kUser)
      return usage(fmt::format("{} is a {}: only users (role user) get a quarantine digest", name,
                               store::to_string((*u)->role)), "digest");
    digest = value == "on";
  }
  const bool before = (*u)->digest;
  auto changed = a.store.set_user_digest(name, *digest);
  if (!changed) return unavailable(changed.error());
  if (!*changed) return not_found(fmt::format("no such user: {}", name));
  if (auto s = audit(a.store, a.principal, "user.set", name, {{"digest", before ? "on" : "off"}},
                     {{"digest", *digest ? "on" : "off"}});
      !s)
    return unavailable(s.error());
  (*u)->digest = *digest;
  return std::move(**u);
}

}  // namespace mxguard::admin
