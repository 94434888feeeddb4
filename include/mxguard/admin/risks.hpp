// Settings that are valid but put a domain's mail at risk: the console
// refuses them until the operator repeats the command with --force.
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "mxguard/store/config_store.hpp"

namespace mxguard::admin {

struct RiskFacts {
  bool dane_trust_anchor = false;  // delivery.dane_trust_anchor is configured
  size_t recipients = 0;           // recipients defined for the domain
};

// One sentence per risk that `d` runs through the settings named in
// `changed` (greylist_threshold, recipients, tls, trust); empty when none.
// Only the settings being changed count, so an unrelated `domain set`
// on a domain that was forced into a risky state earlier is not refused.
std::vector<std::string> setting_risks(const store::Domain& d, const std::set<std::string>& changed,
                                       const RiskFacts& facts);

// The one refusal line: the risks and how to go ahead anyway.
std::string force_refusal(const std::vector<std::string>& risks);

}  // namespace mxguard::admin
