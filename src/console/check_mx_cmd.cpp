// `mxguard domain check-mx DOMAIN`: looks up the domain's MX set and the
// addresses of its targets, then reports the routing role and every problem.
#include <fmt/format.h>

#include <memory>

#include "dns_commands.hpp"
#include "mx_check.hpp"
#include "mxguard/core/net.hpp"
#include "onboarding.hpp"
#include "output.hpp"
#include "validate.hpp"

namespace mxguard::console {

namespace {

struct CheckMxOptions {
  std::string domain;
  bool json = false;
};

// Fills in a target's addresses. IP literals and the null MX are not looked
// up: a name like "192.0.2.1" lives under a numeric TLD no server is
// authoritative for, so asking would only cost a timeout.
MxTarget lookup_target(const Config& cfg, dns::Resolver& resolver, const dns::MxRecord& mx) {
  MxTarget t;
  t.preference = mx.preference;
  t.host = mx.host;
  t.ours = !mx.is_null() && is_our_host(mx.host, cfg.onboarding.mx_hosts);
  t.ip_literal = IpAddress::parse(mx.host).has_value();
  if (mx.is_null() || t.ip_literal) return t;
  auto a = resolver.addresses(mx.host);
  t.address_status = a.status;
  t.address_failure = lookup_failure(cfg, a.status, a.error);
  t.alias = a.canonical_name;
  for (const auto& ip : a.records) t.addresses.push_back(ip.to_string());
  return t;
}

MxReport check(const Config& cfg, dns::Resolver& resolver, const std::string& domain) {
  MxReport r;
  r.domain = domain;
  auto answer = resolver.mx(domain);
  r.lookup = answer.status;
  r.lookup_failure = lookup_failure(cfg, answer.status, answer.error);
  for (const auto& mx : answer.records) r.targets.push_back(lookup_target(cfg, resolver, mx));
  assess(r, cfg.onboarding.mx_hosts);
  return r;
}

nlohmann::ordered_json report_json(const MxReport& r, const std::string& backend) {
  nlohmann::ordered_json mx = nlohmann::ordered_json::array();
  for (const auto& t : r.targets)
    mx.push_back({{"preference", t.preference},
                  {"host", t.host.empty() ? "." : t.host},
                  {"ours", t.ours},
                  {"ip_literal", t.ip_literal},
                  {"addresses", t.addresses}});
  return {{"domain", r.domain},
          {"role", to_string(r.role)},
          {"role_description", role_description(r.role, backend)},
          {"delivers_to", backend},
          {"ok", r.ok},
          {"lookup", dns::to_string(r.lookup)},
          {"mx", mx},
          {"warnings", r.warnings}};
}

std::string addresses_cell(const MxTarget& t) {
  if (t.host.empty()) return "-";
  if (t.ip_literal) return "(not looked up: IP address)";
  if (t.addresses.empty()) return fmt::format("(none: {})", dns::to_string(t.address_status));
  return fmt::format("{}", fmt::join(t.addresses, ", "));
}

void print_report(const MxReport& r, const std::string& backend) {
  if (!r.targets.empty()) {
    fmt::print("MX records of {}:\n", r.domain);
    Table table({"  PREF", "HOST", "OURS", "ADDRESSES"});
    for (const auto& t : r.targets)
      table.add_row({fmt::format("  {}", t.preference), t.host.empty() ? "." : t.host, t.ours ? "yes" : "no",
                     addresses_cell(t)});
    table.print();
  }
  fmt::print("Role: {}\n", role_description(r.role, backend));
  if (!r.warnings.empty()) fmt::print("\n");
  // Bypass warnings are the ones an operator must not miss.
  for (const auto& w : r.warnings) fmt::print("{} {}\n", w.starts_with("BYPASS:") ? "!!!" : "  -", printable(w));
  if (r.ok) fmt::print("\nOK: every MX record of {} points at MxGuard and resolves.\n", r.domain);
}

int run_check_mx(const Context& ctx, const CheckMxOptions& o) {
  auto m = open_managed_domain(ctx, o.domain);
  if (m.exit_code) return m.exit_code;
  const std::string& name = m.domain.name;
  auto resolver = make_resolver(ctx.config);
  if (!resolver) return runtime_error(resolver.error());

  MxReport r = check(ctx.config, *resolver, name);
  std::string backend = format_backend(m.domain.backend_host, m.domain.backend_port);
  if (o.json) print_json_line(report_json(r, backend));
  else print_report(r, backend);
  if (r.ok) return kExitOk;
  if (o.json) return kExitRuntime;
  return runtime_error(fmt::format("the MX set of {} needs attention ({})", r.domain,
                                   count_of(r.warnings.size(), "warning", "warnings")));
}

}  // namespace

void add_check_mx_command(CLI::App& domain_group, Commands& out) {
  auto o = std::make_shared<CheckMxOptions>();
  CLI::App* cmd = domain_group.add_subcommand(
      "check-mx", "Check that the domain's MX records point at this installation, and report its routing role");
  cmd->add_option("DOMAIN", o->domain, "Domain name")->required();
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_check_mx(ctx, *o); }});
}

}  // namespace mxguard::console
