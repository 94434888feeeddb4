// Rendering of domains for `domain show`, `domain list` and `domain add`.
#include "domain_view.hpp"

#include <fmt/format.h>

#include "onboarding.hpp"
#include "output.hpp"
#include "validate.hpp"

namespace mxguard::console {

namespace {

void print_field(std::string_view key, std::string_view value) {
  fmt::print("{:<12}{}\n", fmt::format("{}:", key), printable(value));
}

}  // namespace

void print_domain_details(const Config& cfg, const store::Domain& d) {
  print_field("domain", d.name);
  print_field("customer", d.customer);
  print_field("status", store::to_string(d.status));
  print_field("created", iso8601(d.created_ms));
  print_field("backend", format_backend(d.backend_host, d.backend_port));
  print_field("tls", d.tls_policy);
  print_field("trust", d.trust);
  if (d.trust == "auth") {
    print_field("auth user", d.auth_user);
    print_field("auth password", d.auth_password.empty() ? "not set" : "set");
  }
  print_field("recipients", d.recipients_mode);
  print_field("delimiter", d.recipient_delimiter.empty() ? "none" : d.recipient_delimiter);
  print_field("thresholds", fmt::format("reject {} / quarantine {} / greylist {}", d.reject_threshold,
                                        d.quarantine_threshold, d.greylist_threshold));
  print_field("digest from", d.digest_from.empty() ? "postmaster@" + d.name : d.digest_from);
  print_field("quarantine", fmt::format("{} days", d.quarantine_days));
  print_dns_instructions(cfg, d);
}

void print_dns_instructions(const Config& cfg, const store::Domain& d) {
  if (d.status == store::DomainStatus::kPendingVerification) {
    fmt::print("\nTo prove ownership, publish this TXT record:\n");
    fmt::print("  {}. {} IN TXT \"{}\"\n", verification_name(cfg, d.name), kVerifyTtl, d.verify_token);
  }
  auto mx = mx_records(cfg);
  if (mx.empty()) {
    fmt::print("\nNo MX hosts are configured (onboarding.mx_hosts); cannot say where MX records should point.\n");
    return;
  }
  fmt::print("\nTo route mail through MxGuard, set these MX records (and no others):\n");
  for (const auto& r : mx) fmt::print("  {}. IN MX {} {}.\n", d.name, r.preference, r.host);
}

void print_domain_table(const std::vector<store::Domain>& domains) {
  Table table({"DOMAIN", "CUSTOMER", "STATUS", "BACKEND"});
  for (const auto& d : domains)
    table.add_row({d.name, d.customer, std::string(store::to_string(d.status)),
                   format_backend(d.backend_host, d.backend_port)});
  table.print();
  fmt::print("{}\n", count_of(domains.size(), "domain", "domains"));
}

}  // namespace mxguard::console
