// Customer accounts: add, remove, rename, list. Only operators create or
// remove tenants; a customer-admin sees its own.
#include "mxguard/admin/customers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "mxguard/admin/text.hpp"
#include "mxguard/admin/validate.hpp"

namespace mxguard::admin {

Outcome<store::Customer> add_customer(const Actor& a, std::string_view name) {
  if (!is_operator(a.principal)) return forbidden("adding customers");
  if (auto s = check_customer_name(name); !s) return usage(s.error(), "name");
  store::Customer c{std::string(name), now_ms()};
  auto added = a.store.add_customer(c);
  if (!added) return unavailable(added.error());
  // Exit 2 at the console since its first release; kept for scripts.
  if (!*added) return conflict(fmt::format("customer {} already exists", name));
  if (auto s = audit(a.store, a.principal, "customer.add", name, nullptr, {{"name", name}}); !s)
    return unavailable(s.error());
  return c;
}

// Removing what a customer owns is a decision taken one by one, not a side effect.
Outcome<store::Customer> remove_customer(const Actor& a, std::string_view name) {
  if (!is_operator(a.principal)) return forbidden("removing customers");
  auto before = a.store.customer(name);
  if (!before) return unavailable(before.error());
  auto removed = a.store.remove_customer(name);
  if (!removed) return unavailable(removed.error());
  using Change = store::ConfigStore::CustomerChange;
  if (*removed == Change::kNoCustomer) return not_found(fmt::format("no such customer: {}", name));
  if (*removed == Change::kInUse) {
    auto domains = a.store.domains();
    auto users = a.store.users();
    if (!domains || !users) return unavailable(!domains ? domains.error() : users.error());
    size_t nd = std::count_if(domains->begin(), domains->end(), [&](const store::Domain& d) { return d.customer == name; });
    size_t nu = std::count_if(users->begin(), users->end(), [&](const store::User& u) { return u.customer == name; });
    return conflict(fmt::format("customer {} still has {} and {}; remove them first (domain remove, user remove)", name,
                                count_of(nd, "domain", "domains"), count_of(nu, "user", "users")));
  }
  store::Customer was = before->value_or(store::Customer{std::string(name), 0});
  if (auto s = audit(a.store, a.principal, "customer.remove", name,
                     {{"name", name}, {"created", iso8601(was.created_ms)}}, nullptr);
      !s)
    return unavailable(s.error());
  return was;
}

Outcome<bool> rename_customer(const Actor& a, std::string_view from, std::string_view to) {
  if (!is_operator(a.principal)) return forbidden("renaming customers");
  if (auto s = check_customer_name(to); !s) return usage(s.error(), "name");
  auto renamed = a.store.rename_customer(from, to);
  if (!renamed) return unavailable(renamed.error());
  using Change = store::ConfigStore::CustomerChange;
  if (*renamed == Change::kNoCustomer) return not_found(fmt::format("no such customer: {}", from));
  if (*renamed == Change::kNameTaken) return conflict(fmt::format("customer {} already exists", to));
  if (auto s = audit(a.store, a.principal, "customer.rename", from, {{"name", from}}, {{"name", to}}); !s)
    return unavailable(s.error());
  return true;
}

Outcome<std::vector<CustomerInfo>> list_customers(const Actor& a) {
  if (!is_operator(a.principal) && a.principal.role != store::Role::kCustomerAdmin)
    return forbidden("listing customers");
  auto customers = a.store.customers();
  if (!customers) return unavailable(customers.error());
  auto domains = a.store.domains();
  if (!domains) return unavailable(domains.error());
  std::map<std::string, size_t> counts;
  for (const auto& d : *domains) ++counts[d.customer];
  std::vector<CustomerInfo> out;
  for (auto& c : *customers) {
    if (!may_manage_customer(a.principal, c.name)) continue;
    size_t n = counts.contains(c.name) ? counts[c.name] : 0;
    out.push_back({std::move(c), n});
  }
  return out;
}

nlohmann::ordered_json customer_json(const CustomerInfo& c) {
  return {{"name", c.customer.name}, {"domains", c.domains}, {"created", iso8601(c.customer.created_ms)}};
}

}  // namespace mxguard::admin
