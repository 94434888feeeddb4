// The customer (tenant) operations behind `mxguard customer ...`.
#pragma once

#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/admin/domains.hpp"

namespace mxguard::admin {

struct CustomerInfo {
  store::Customer customer;
  size_t domains = 0;
};

Outcome<store::Customer> add_customer(const Actor& a, std::string_view name);
// Refuses (conflict) while the customer still owns domains or users.
Outcome<store::Customer> remove_customer(const Actor& a, std::string_view name);
Outcome<bool> rename_customer(const Actor& a, std::string_view from, std::string_view to);
// The customers the principal may see, with their domain counts.
Outcome<std::vector<CustomerInfo>> list_customers(const Actor& a);

// {"name","domains","created"}
nlohmann::ordered_json customer_json(const CustomerInfo& c);

}  // namespace mxguard::admin
