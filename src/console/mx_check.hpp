// Judging a domain's MX set against this installation's MX hosts: routing
// role, problems worth a warning, and whether all is well. Pure: the lookups
// happen in check_mx_cmd.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/dns/resolver.hpp"

namespace mxguard::console {

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

// Sorts the targets and fills role, ok and warnings.
void assess(MxReport& r, const std::vector<std::string>& our_hosts);

}  // namespace mxguard::console
