// How a domain is shown: its JSON object (a contract for scripts) and its
// human forms (detail lines, the DNS records to publish, the list table).
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/admin/domains.hpp"
#include "mxguard/core/config.hpp"
#include "mxguard/store/config_store.hpp"

namespace mxguard::console {

using admin::domain_json;

// "key: value" lines followed by the DNS records the customer must publish.
void print_domain_details(const Config& cfg, const store::Domain& d);

// The TXT record (while verification is pending) and the MX set to publish.
void print_dns_instructions(const Config& cfg, const store::Domain& d);

void print_domain_table(const std::vector<store::Domain>& domains);

}  // namespace mxguard::console
