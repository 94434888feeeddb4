// `domain check-mx` / GET /api/v1/domains/{d}/mx-check: a domain's MX set
// judged against this installation's MX hosts (routing role, each problem in
// words, whether all is well) and the records the customer should publish.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/admin/domains.hpp"
#include "mxguard/admin/onboarding.hpp"
#include "mxguard/dns/resolver.hpp"

namespace mxguard::admin {

struct MxTarget {
  uint16_t preference = 0;
  std::string host;  // empty for the null MX (RFC 7505)
  bool ours = false;
  bool ip_literal = false;
  // The A/AAAA lookup; not asked for IP literals and the null MX.
  dns::LookupStatus address_status = dns::LookupStatus::kNoData;
  std::string address_failure;  // lookup_failure() wording when it failed
  std::vector<std::string> addresses;
  std::string alias;  // CNAME target: MX targets must not be aliases
};

enum class MxRole { kPrimary, kBackup, kNotInMx, kUnknown };
// "primary", "backup", "not_in_mx", "unknown" (the MX lookup itself failed).
std::string_view to_string(MxRole role);

struct MxReport {
  std::string domain;
  dns::LookupStatus lookup = dns::LookupStatus::kOk;  // of the MX set itself
  std::string lookup_failure;
  std::vector<MxTarget> targets;  // by preference, then host
  MxRole role = MxRole::kUnknown;
  bool ok = false;  // every target ours, a host name, with an address
  std::vector<std::string> warnings;  // bypass warnings first, each starting "BYPASS:"
};

// What the role means for the domain's mail, in one sentence for people and
// the JSON. `backend` is the domain's configured backend ("host:port"): in
// either role MxGuard filters what reaches it and delivers to that backend.
std::string role_description(MxRole role, std::string_view backend);

// Is `host` (lower case, no trailing dot) one of `our_hosts`?
bool is_our_host(std::string_view host, const std::vector<std::string>& our_hosts);

// Sorts the targets and fills role, ok and warnings. Pure: no lookups.
void assess(MxReport& r, const std::vector<std::string>& our_hosts);

struct MxCheck {
  store::Domain domain;
  MxReport report;
  std::string backend;              // "host:port", where MxGuard delivers the domain's mail
  std::vector<MxRecord> records;    // the MX set to publish
};
// Looks up the MX set of a domain the principal manages and its targets'
// addresses, and judges it. A bad MX set is a result (ok = false), not a failure.
Outcome<MxCheck> check_mx(const Actor& a, std::string_view typed);

// The report as `check-mx --json` prints it:
// {"domain","role","role_description","delivers_to","ok","lookup","mx":[...],"warnings":[...]}
nlohmann::ordered_json mx_report_json(const MxCheck& c);

}  // namespace mxguard::admin
