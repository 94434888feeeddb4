// Domain admission (syntax and ownership) and the DNS records onboarding asks for.
#include "mxguard/admin/onboarding.hpp"

#include <idn2.h>

#include <fmt/format.h>

#include "mxguard/core/strings.hpp"
#include "mxguard/smtp/address.hpp"
#include "mxguard/admin/text.hpp"
#include "mxguard/admin/validate.hpp"

namespace mxguard::admin {

namespace {

bool has_non_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return true;
  return false;
}

}  // namespace

namespace {
// Converts a Unicode name to its A-label form (IDNA 2008 with UTS #46
// mapping, so case and width variants fold); ASCII input passes through.
Result<std::string> to_a_label(std::string_view input, const std::string& shown) {
  if (!has_non_ascii(input)) return std::string(input);
  std::string in(input);
  char* out = nullptr;
  int rc = idn2_to_ascii_8z(in.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
  if (rc != IDN2_OK) return Error{fmt::format("'{}' is not a valid internationalized domain name: {}", shown,
                                              idn2_strerror(rc))};
  std::string a(out);
  idn2_free(out);
  return a;
}
}  // namespace

Result<std::string> normalize_domain(std::string_view input) {
  if (input.empty()) return Error{"domain name is empty"};
  std::string shown = printable(input);
  // Common pastes from a browser or a mail client, each with its own advice.
  if (input.find("://") != std::string_view::npos)
    return Error{fmt::format("'{}' is a URL: give the bare domain, without a scheme", shown)};
  if (input.back() == '/') return Error{fmt::format("'{}' has a trailing slash: give the bare domain", shown)};
  if (input.find('@') != std::string_view::npos)
    return Error{fmt::format("'{}' is a mail address: give only the part after the @", shown)};
  // A trailing dot is refused rather than stripped: stored names have none,
  // and silently changing what the operator typed hides typos like "example.com..".
  if (input.back() == '.') return Error{fmt::format("domain '{}' must be given without a trailing dot", shown)};
  for (unsigned char c : input)
    if (c < 0x21 || c == 0x7f) return Error{fmt::format("domain '{}' contains spaces or control characters", shown)};
  auto alabel = to_a_label(input, shown);
  if (!alabel) return Error{alabel.error()};
  if (alabel->size() > 253)
    return Error{fmt::format("domain name is {} characters long; at most 253 are allowed", alabel->size())};
  std::string name = to_lower(*alabel);
  if (!smtp::valid_domain(name, false))
    return Error{fmt::format("'{}' is not a valid domain name (labels of 1 to 63 letters, digits or inner hyphens)",
                             shown)};
  if (name.find('.') == std::string::npos)
    return Error{fmt::format("'{}' is not a full domain name: it needs at least one dot", shown)};
  if (name.rfind("www.", 0) == 0)
    return Error{fmt::format("'{}' starts with www.: give the mail domain ({})", shown, name.substr(4))};
  if (numeric_tld(name)) return Error{fmt::format("'{}' is an IP address, not a domain name", shown)};
  return name;
}

Result<Refusal> admit_new_domain(const store::ConfigStore& store, const store::Domain& d, const Blocklist& blocklist,
                                 bool force) {
  // Order matters and is part of the contract: blocklist, then ownership.
  if (auto listed = blocklist.match(d.name); listed && !force) {
    std::string why = *listed == d.name ? "is" : fmt::format("is under {}, which is", *listed);
    return Refusal{{Category::kNeedsForce, fmt::format("domain {} {} on the high-value blocklist (an operator may add it "
                                                  "with --force)", d.name, why)}};
  }
  auto existing = store.domain(d.name);
  if (!existing) return Error{existing.error()};
  if (*existing) {
    // Another tenant's name stays unnamed: the console will also serve customer admins.
    if ((*existing)->customer != d.customer)
      return Refusal{{Category::kConflict, fmt::format("domain {} already belongs to another customer", d.name)}};
    return Refusal{{Category::kConflict, fmt::format("domain {} already exists for customer {}", d.name, d.customer)}};
  }
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

}  // namespace mxguard::admin
