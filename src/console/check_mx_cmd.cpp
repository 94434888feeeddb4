// `mxguard domain check-mx DOMAIN`: prints admin::check_mx's report (the
// routing role and every problem) as a table or JSON.
#include <fmt/format.h>

#include <memory>

#include "console.hpp"
#include "dns_commands.hpp"
#include "mxguard/admin/mx_check.hpp"
#include "onboarding.hpp"
#include "output.hpp"
#include "validate.hpp"

namespace mxguard::console {

namespace {

struct CheckMxOptions {
  std::string domain;
  bool json = false;
};

using admin::MxReport;
using admin::MxTarget;

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
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto c = admin::check_mx(actor(ctx, **store), o.domain);
  if (!c) return fail(c.failure());
  const MxReport& r = c->report;
  if (o.json) print_json_line(admin::mx_report_json(*c));
  else print_report(r, c->backend);
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
