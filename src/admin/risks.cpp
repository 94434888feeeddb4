// The risky-setting checks behind `domain add` and `domain set` --force.
#include "mxguard/admin/risks.hpp"

#include <fmt/format.h>

namespace mxguard::admin {

std::vector<std::string> setting_risks(const store::Domain& d, const std::set<std::string>& changed,
                                       const RiskFacts& facts) {
  std::vector<std::string> risks;
  if (changed.contains("greylist_threshold") && d.greylist_threshold < 0)
    risks.push_back(fmt::format("greylist_threshold={} is below 0: nearly every message scores above it and is "
                                "greylisted (451) first",
                                d.greylist_threshold));
  if (changed.contains("recipients") && d.recipients_mode == "list" && facts.recipients == 0)
    risks.push_back(fmt::format("recipients=list with no recipients defined for {}: every recipient is refused "
                                "(550 5.1.1) until addresses are added (recipient add, recipient import)",
                                d.name));
  if (changed.contains("tls") && d.tls_policy == "dane" && !facts.dane_trust_anchor)
    risks.push_back(fmt::format("tls=dane without delivery.dane_trust_anchor in the configuration: no TLSA record "
                                "can be validated, so every delivery to {} is deferred",
                                d.name));
  if (changed.contains("trust") && d.trust == "auth" && d.auth_password.empty())
    risks.push_back(fmt::format("trust=auth without a stored password (--auth-password-file): the login to the "
                                "backend of {} is sent with an empty password and its mail is deferred",
                                d.name));
  return risks;
}

std::string force_refusal(const std::vector<std::string>& risks) {
  return fmt::format("refused, nothing changed: {}; repeat with --force to do it anyway", fmt::join(risks, "; "));
}

}  // namespace mxguard::admin
