// Onboarding rules for customer domains: what name is admissible, and which
// DNS records the customer must publish. IDN (A-labels), the high-value
// blocklist and DNS verification are later steps that slot in here.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/config.hpp"
#include "mxguard/core/result.hpp"
#include "mxguard/admin/blocklist.hpp"
#include "mxguard/admin/failure.hpp"
#include "mxguard/store/config_store.hpp"

namespace mxguard::admin {

inline constexpr unsigned kVerifyTtl = 300;

// Lower-cases and checks a domain as typed by an operator: LDH labels, at
// least one dot, at most 253 characters, no trailing dot. Used for lookups
// too, so "Example.COM" finds "example.com".
Result<std::string> normalize_domain(std::string_view input);

// Why a new domain is refused (needs_force: blocklisted; conflict: taken);
// nullopt when it may be added.
using Refusal = std::optional<Failure>;
// Policy checks on a syntactically valid new domain before anything is
// written: the high-value blocklist (unless `force`), then that nobody has it
// yet. An error means the store failed.
Result<Refusal> admit_new_domain(const store::ConfigStore& store, const store::Domain& d, const Blocklist& blocklist,
                                 bool force);

// "_mxguard-verify.<domain>": where the verification TXT record goes.
std::string verification_name(const Config& cfg, std::string_view domain);

struct MxRecord {
  unsigned preference;
  std::string host;
};
// The MX set a customer should publish: our MX hosts at preferences 10, 20, ...
std::vector<MxRecord> mx_records(const Config& cfg);

}  // namespace mxguard::admin
