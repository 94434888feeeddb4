// Roles, tenant scope and audit entries: the permission rules of every front end.
#include "mxguard/admin/access.hpp"

#include <fmt/format.h>

#include "mxguard/admin/text.hpp"

namespace mxguard::admin {

const CategoryInfo& category_info(Category c) {
  for (const CategoryInfo& i : kCategories)
    if (i.category == c) return i;
  return kCategories[std::size(kCategories) - 1];
}

Failure forbidden(std::string_view what) {
  return {Category::kNotPermitted, fmt::format("not permitted: {}", what)};
}

Failure out_of_scope(std::string_view kind, std::string_view name) {
  Failure f{Category::kNotFound, fmt::format("no such {}: {}", kind, name)};
  f.out_of_scope = true;
  f.console_message = forbidden(fmt::format("{} {}", kind, name)).message;
  return f;
}

Outcome<Principal> user_principal(const store::ConfigStore& store, std::string_view user) {
  auto u = store.user(user);
  if (!u) return unavailable(u.error());
  if (!*u) return not_found(fmt::format("no such user: {}", user));
  return Principal{(*u)->name, (*u)->role, (*u)->customer, (*u)->domain};
}

bool is_operator(const Principal& p) { return p.role == store::Role::kOperator; }

bool may_manage_domain(const Principal& p, const store::Domain& d) {
  switch (p.role) {
    case store::Role::kOperator: return true;
    case store::Role::kCustomerAdmin: return !p.customer.empty() && d.customer == p.customer;
    case store::Role::kPostmaster: return d.name == p.domain && d.customer == p.customer;
    case store::Role::kUser: return false;
  }
  return false;
}

bool may_manage_customer(const Principal& p, std::string_view customer) {
  return is_operator(p) || (p.role == store::Role::kCustomerAdmin && p.customer == customer);
}

Outcome<store::Domain> managed_domain(const store::ConfigStore& store, const Principal& p, std::string_view name) {
  auto d = store.domain(name);
  if (!d) return unavailable(d.error());
  if (*d && may_manage_domain(p, **d)) return std::move(**d);
  if (!is_operator(p)) return out_of_scope("domain", name);
  return not_found(fmt::format("no such domain: {}", name));
}

nlohmann::ordered_json domain_record(const store::Domain& d) {
  return nlohmann::ordered_json::parse(store::encode_domain(d).substr(1));
}

namespace {
void mask_secrets(nlohmann::ordered_json& j) {
  if (!j.is_object()) return;
  for (auto& [k, v] : j.items())
    if (k.find("password") != std::string::npos || k.find("secret") != std::string::npos ||
        k.find("token") != std::string::npos)
      v = "***";
}
}  // namespace

Status audit(store::ConfigStore& store, const Principal& p, std::string_view action, std::string_view object,
             const nlohmann::ordered_json& before, const nlohmann::ordered_json& after) {
  store::AuditEntry e;
  e.time_ms = now_ms();
  e.principal = p.name;
  e.action = std::string(action);
  e.object = std::string(object);
  auto b = before, a = after;
  mask_secrets(b);
  mask_secrets(a);
  e.before = b.is_null() ? "" : b.dump();
  e.after = a.is_null() ? "" : a.dump();
  return store.append_audit(e);
}

}  // namespace mxguard::admin
