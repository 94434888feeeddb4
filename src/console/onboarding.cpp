// Domain admission (syntax and ownership) and the DNS records onboarding asks for.
#include "onboarding.hpp"

#include <fmt/format.h>

#include "mxguard/core/strings.hpp"
#include "mxguard/smtp/address.hpp"
#include "output.hpp"
#include "validate.hpp"

namespace mxguard::console {

namespace {

bool has_non_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return true;
  return false;
}

}  // namespace

Result<std::string> normalize_domain(std::string_view input) {
  if (input.empty()) return Error{"domain name is empty"};
  std::string shown = printable(input);
  // A trailing dot is refused rather than stripped: stored names have none,
  // and silently changing what the operator typed hides typos like "example.com..".
  if (input.back() == '.') return Error{fmt::format("domain '{}' must be given without a trailing dot", shown)};
  // IDN conversion (U-label to A-label) is a later step; until then say how to get in.
  if (has_non_ascii(input))
    return Error{fmt::format("domain '{}' is not ASCII: give an internationalized name in its xn-- form", shown)};
  if (input.size() > 253) return Error{fmt::format("domain name is {} characters long; at most 253 are allowed", input.size())};
  std::string name = to_lower(input);
  if (!smtp::valid_domain(name, false))
    return Error{fmt::format("'{}' is not a valid domain name (labels of 1 to 63 letters, digits or inner hyphens)",
                             shown)};
  if (name.find('.') == std::string::npos)
    return Error{fmt::format("'{}' is not a full domain name: it needs at least one dot", shown)};
  if (numeric_tld(name)) return Error{fmt::format("'{}' is an IP address, not a domain name", shown)};
  return name;
}

Result<Refusal> admit_new_domain(const store::ConfigStore& store, const store::Domain& d) {
  auto existing = store.domain(d.name);
  if (!existing) return Error{existing.error()};
  if (*existing) {
    // Another tenant's name stays unnamed: the console will also serve customer admins.
    if ((*existing)->customer != d.customer)
      return Refusal(fmt::format("domain {} already belongs to another customer", d.name));
    return Refusal(fmt::format("domain {} already exists for customer {}", d.name, d.customer));
  }
  // The high-value blocklist check (overridable with --force) goes here.
  return Refusal();
}

std::string verification_name(const Config& cfg, std::string_view domain) {
  return fmt::format("{}.{}", cfg.onboarding.verify_label, domain);
}

std::vector<MxRecord> mx_records(const Config& cfg) {
  std::vector<MxRecord> out;
  unsigned pref = 10;
  for (const auto& host : cfg.onboarding.mx_hosts) {
    out.push_back({pref, host});
    pref += 10;
  }
  return out;
}

}  // namespace mxguard::console
