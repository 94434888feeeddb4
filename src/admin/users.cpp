// User accounts and roles. Passwords are Argon2id hashes (libsodium), wiped
// from memory once hashed and never returned.
#include "mxguard/admin/users.hpp"

#include <sodium.h>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "mxguard/admin/onboarding.hpp"
#include "mxguard/admin/quarantine.hpp"
#include "mxguard/admin/quarantine_view.hpp"
#include "mxguard/admin/text.hpp"
#include "mxguard/admin/validate.hpp"
#include "mxguard/core/strings.hpp"
#include "mxguard/store/quarantine.hpp"

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

// Another tenant's user and a missing one get the same answer (and, at
// the console, the same not-found exit `user set` always had).
Failure no_such_user(const Principal&, std::string_view name) {
  return not_found(fmt::format("no such user: {}", name));
}

// Who may read an entry about this user: their customer, and within it
// the domain of their address (users) or their one domain (postmasters).
AuditOwner owner_of_user(const store::User& u) {
  if (u.role == store::Role::kPostmaster) return {u.customer, u.domain};
  if (u.role == store::Role::kUser) return {u.customer, store::quarantine_domain_of(u.address)};
  return {u.customer, ""};
}

constexpr size_t kMaxShadows = 100;

// Shadow addresses for `u` as `p` typed them: lower-cased, each once, none
// the user's own address. A customer's principal may only name addresses in
// the user's customer's domains, or the quarantine scope would ignore them
// silently; an operator may name any (say, while a domain moves between
// customers), and the scope still ignores what is not the user's customer's.
Outcome<std::vector<std::string>> checked_shadows(const Actor& a, const store::User& u,
                                                  const std::vector<std::string>& typed) {
  if (typed.empty()) return std::vector<std::string>{};
  if (u.role != store::Role::kUser)
    return usage(fmt::format("only users (role user) have shadow addresses, not a {}", store::to_string(u.role)),
                 "shadows");
  if (typed.size() > kMaxShadows) return usage(fmt::format("at most {} shadow addresses", kMaxShadows), "shadows");
  std::vector<std::string> out;
  const std::string own = to_lower(u.address);
  for (const auto& t : typed) {
    auto addr = quarantine_address(t, "shadows");
    if (!addr) return addr.failure();
    if (*addr == own) return usage(fmt::format("{} is the user's own address, not a shadow", *addr), "shadows");
    if (std::find(out.begin(), out.end(), *addr) != out.end())
      return usage(fmt::format("{} is listed twice", *addr), "shadows");
    if (!is_operator(a.principal)) {
      auto d = a.store.domain(store::quarantine_domain_of(*addr));
      if (!d) return unavailable(d.error());
      if (!*d || (*d)->customer != u.customer)
        return usage(fmt::format("{}: {} is not one of {}'s domains", *addr, store::quarantine_domain_of(*addr),
                                 u.customer),
                     "shadows");
    }
    out.push_back(std::move(*addr));
  }
  return out;
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
  auto may = creatable_roles(p);
  if (may.empty()) return forbidden("adding users");
  // Only operators create operators and customer-admins.
  if (std::find(may.begin(), may.end(), u.role) == may.end())
    return forbidden(fmt::format("creating a {}", store::to_string(u.role)));
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
  auto shadows = checked_shadows(a, u, o.shadows);
  if (!shadows) return shadows.failure();
  u.shadows = std::move(*shadows);
  return u;
}

}  // namespace

std::vector<store::Role> creatable_roles(const Principal& p) {
  using store::Role;
  switch (p.role) {
    case Role::kOperator: return {Role::kOperator, Role::kCustomerAdmin, Role::kPostmaster, Role::kUser};
    case Role::kCustomerAdmin:
    case Role::kPostmaster: return {Role::kPostmaster, Role::kUser};
    case Role::kUser: return {};
  }
  return {};
}

nlohmann::ordered_json user_json(const store::User& u) {
  return {{"name", u.name},       {"role", store::to_string(u.role)}, {"customer", u.customer},
          {"domain", u.domain},   {"address", u.address},           {"shadows", u.shadows},
          {"has_password", !u.password_hash.empty()}, {"digest", u.digest ? "on" : "off"},
          {"created", iso8601(u.created_ms)}};
}

Outcome<store::User> add_user(const Actor& a, const NewUser& in) {
  // A role that may create no user is refused before the input is looked at.
  if (creatable_roles(a.principal).empty()) return forbidden("adding users");
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
  if (auto s = audit(a.store, a.principal, "user.add", u->name, nullptr, user_json(*u), owner_of_user(*u)); !s)
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
  if (auto s = audit(a.store, a.principal, "user.remove", name, user_json(**u), nullptr, owner_of_user(**u)); !s)
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
  if (auto s = audit(a.store, a.principal, "user.passwd", name, nullptr, {{"name", name}}, owner_of_user(*u)); !s)
    return unavailable(s.error());
  u->password_hash = std::move(*hash);
  return u;
}

Outcome<store::User> show_user(const Actor& a, std::string_view name) {
  auto u = a.store.user(name);
  if (!u) return unavailable(u.error());
  if (!*u || ((*u)->name != a.principal.name && !may_see_user(a.principal, **u)))
    return no_such_user(a.principal, name);
  return std::move(**u);
}

Outcome<store::User> change_password(const Actor& a, PasswordChange in) {
  struct Wipe {
    PasswordChange& c;
    ~Wipe() {
      sodium_memzero(c.password.data(), c.password.size());
      if (c.current) sodium_memzero(c.current->data(), c.current->size());
    }
  } wipe{in};
  if (in.name != a.principal.name) {
    if (in.current) return usage("the current password is only asked for your own account", "current");
    return set_password(a, in.name, in.password);
  }
  auto u = a.store.user(in.name);
  if (!u) return unavailable(u.error());
  if (!*u) return no_such_user(a.principal, in.name);
  if (!in.current || in.current->empty()) return usage("give your current password to change it", "current");
  if (sodium_init() < 0) return unavailable("libsodium failed to initialise");
  const std::string& stored = (*u)->password_hash;
  if (stored.empty() ||
      crypto_pwhash_str_verify(stored.c_str(), in.current->data(), in.current->size()) != 0)
    return usage("the current password is wrong", "current");
  if (auto s = check_password(in.password); !s) return usage(s.error(), "password");
  std::string pw = in.password;
  auto hash = hash_password(pw);
  if (!hash) return unavailable(hash.error());
  auto changed = a.store.set_user_password(in.name, *hash);
  if (!changed) return unavailable(changed.error());
  if (!*changed) return no_such_user(a.principal, in.name);
  if (auto s = audit(a.store, a.principal, "user.passwd", in.name, nullptr, {{"name", in.name}, {"self", true}},
                     owner_of_user(**u));
      !s)
    return unavailable(s.error());
  (*u)->password_hash = std::move(*hash);
  return std::move(**u);
}

Outcome<std::vector<store::AuditEntry>> audit_log(const Actor& a, const AuditFilter& f) {
  if (a.principal.role == store::Role::kUser) return forbidden("reading the audit log");
  const int64_t now = now_ms();
  int64_t since = 0, until = INT64_MAX;
  if (!f.since.empty()) {
    auto t = parse_time_arg(f.since, now);
    if (!t) return usage(t.error(), "since");
    since = *t;
  }
  if (!f.until.empty()) {
    auto t = parse_time_arg(f.until, now);
    if (!t) return usage(t.error(), "until");
    until = *t;
  }
  size_t limit = 0;
  if (!f.limit.empty()) {
    auto [end, ec] = std::from_chars(f.limit.data(), f.limit.data() + f.limit.size(), limit);
    if (ec != std::errc{} || end != f.limit.data() + f.limit.size() || limit < 1 || limit > 10000)
      return usage(fmt::format("limit must be a number from 1 to 10000, not '{}'", printable(f.limit)), "limit");
  }
  auto entries = a.store.audit();
  if (!entries) return unavailable(entries.error());
  std::erase_if(*entries, [&](const store::AuditEntry& e) {
    return e.time_ms < since || e.time_ms > until || !may_read_audit(a.principal, e);
  });
  if (limit > 0 && entries->size() > limit) entries->erase(entries->begin(), entries->end() - limit);
  return std::move(*entries);
}

nlohmann::ordered_json audit_json(const store::AuditEntry& e) {
  auto parse = [](const std::string& s) {
    return s.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json::parse(s, nullptr, false);
  };
  return {{"time", iso8601_ms(e.time_ms)}, {"principal", e.principal}, {"action", e.action},
          {"object", e.object},          {"before", parse(e.before)}, {"after", parse(e.after)},
          {"customer", e.customer},      {"domain", e.domain}};
}

Outcome<store::User> update_user(const Actor& a, std::string_view name, const UserChanges& in) {
  auto found = a.store.user(name);
  if (!found) return unavailable(found.error());
  const bool self = *found && (*found)->name == a.principal.name;
  const bool manages = *found && may_see_user(a.principal, **found);
  if (!*found || (!self && !manages)) return no_such_user(a.principal, name);
  store::User& u = **found;
  if (!in.digest && !in.shadows) return usage("nothing to set (digest=on|off, shadows=ADDR,...)");
  nlohmann::ordered_json before = nlohmann::ordered_json::object(), after = nlohmann::ordered_json::object();
  if (in.digest) {
    if (u.role != store::Role::kUser)
      return usage(fmt::format("{} is a {}: only users (role user) get a quarantine digest", name,
                               store::to_string(u.role)),
                   "digest");
    before["digest"] = u.digest ? "on" : "off";
    after["digest"] = *in.digest ? "on" : "off";
  }
  std::optional<std::vector<std::string>> shadows;
  if (in.shadows) {
    // A user sees their shadows; who they are is their admins' decision.
    if (!manages) return forbidden("changing your own shadow addresses");
    auto checked = checked_shadows(a, u, *in.shadows);
    if (!checked) return checked.failure();
    if (u.role != store::Role::kUser)
      return usage(fmt::format("only users (role user) have shadow addresses, not a {}", store::to_string(u.role)),
                   "shadows");
    before["shadows"] = u.shadows;
    after["shadows"] = *checked;
    shadows = std::move(*checked);
  }
  auto changed = a.store.set_user_settings(name, in.digest, shadows);
  if (!changed) return unavailable(changed.error());
  if (!*changed) return no_such_user(a.principal, name);
  if (auto s = audit(a.store, a.principal, "user.set", name, before, after, owner_of_user(u)); !s)
    return unavailable(s.error());
  if (in.digest) u.digest = *in.digest;
  if (shadows) u.shadows = std::move(*shadows);
  return std::move(u);
}

Outcome<store::User> set_user_settings(const Actor& a, std::string_view name, const std::vector<std::string>& pairs) {
  // Who may change the user comes before what the pairs say, so another
  // tenant's user name is refused alike whatever is asked.
  if (auto seen = show_user(a, name); !seen) return seen.failure();
  if (pairs.empty()) return usage("nothing to set (digest=on|off, shadows=ADDR,...)");
  UserChanges in;
  for (const auto& p : pairs) {
    auto eq = p.find('=');
    std::string key = p.substr(0, eq);
    if (eq == std::string::npos) return usage(fmt::format("'{}' is not KEY=VALUE", printable(p)));
    std::string value = p.substr(eq + 1);
    if (key == "digest") {
      if (value != "on" && value != "off")
        return usage(fmt::format("digest must be on or off, not '{}'", printable(value)), "digest");
      in.digest = value == "on";
    } else if (key == "shadows") {
      std::vector<std::string> list;
      for (size_t start = 0; start <= value.size() && !value.empty();) {
        size_t comma = value.find(',', start);
        std::string one = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!one.empty()) list.push_back(std::move(one));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      in.shadows = std::move(list);
    } else {
      return usage(fmt::format("unknown user setting '{}' (digest, shadows)", printable(key)), key);
    }
  }
  return update_user(a, name, in);
}

}  // namespace mxguard::admin
