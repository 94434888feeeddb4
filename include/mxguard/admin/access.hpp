// Who acts (the principal), what each role may touch, and the audit trail of
// what they changed. Checks happen before any write; a refusal changes nothing.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/admin/failure.hpp"
#include "mxguard/core/result.hpp"
#include "mxguard/store/accounts.hpp"
#include "mxguard/store/config_store.hpp"

namespace mxguard::admin {

struct Principal {
  std::string name;  // "console:<login>" for the operator at the appliance, else the user name
  store::Role role = store::Role::kOperator;
  std::string customer;
  std::string domain;
  // A digest link's principal ("digest:<recipient>", role user): the
  // addresses it acts for, instead of a stored user's (digest_links.hpp).
  std::vector<std::string> link_addresses;
};

// The principal a stored user acts as; not_found "no such user: NAME" when absent.
Outcome<Principal> user_principal(const store::ConfigStore& store, std::string_view user);

bool is_operator(const Principal& p);
// Domains: operators all; customer-admins their customer's; postmasters their one domain.
bool may_manage_domain(const Principal& p, const store::Domain& d);
// Customers: operators all; customer-admins their own.
bool may_manage_customer(const Principal& p, std::string_view customer);

// Loads a domain (its name already normalised) the principal may manage.
// Another tenant's domain and a missing one get the same refusal, so names
// of other customers never leak: not_found, marked out_of_scope.
Outcome<store::Domain> managed_domain(const store::ConfigStore& store, const Principal& p, std::string_view name);

// A domain's stored settings as JSON, for audit entries.
nlohmann::ordered_json domain_record(const store::Domain& d);

// Whose object an audit entry is about: who besides operators may read it.
struct AuditOwner {
  std::string customer;  // "" = the appliance's own (operators only)
  std::string domain;    // "" = customer-wide (not shown to postmasters)
};
inline AuditOwner owner_of(const store::Domain& d) { return {d.customer, d.name}; }

// Appends one audit entry; `before`/`after` are JSON objects (null for none).
// Keys named like secrets are masked. Without an owner, what a customer's
// principal changes is their customer's (and a postmaster's, their domain's);
// what an operator changes without naming an owner is the appliance's.
Status audit(store::ConfigStore& store, const Principal& p, std::string_view action, std::string_view object,
             const nlohmann::ordered_json& before, const nlohmann::ordered_json& after, AuditOwner owner = {});

// Whether `p` may read the entry: operators all; customer-admins their
// customer's; postmasters their domain's; users none.
bool may_read_audit(const Principal& p, const store::AuditEntry& e);

}  // namespace mxguard::admin
