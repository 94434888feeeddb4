// `mxguard domain ...`: customer domains, their backends and onboarding state.
#include <fmt/format.h>

#include <memory>

#include "console.hpp"
#include "dns_commands.hpp"
#include "domain_view.hpp"
#include "mxguard/admin/domains.hpp"
#include "output.hpp"
#include "validate.hpp"

namespace mxguard::console {

namespace {

struct AddOptions {
  admin::NewDomain in;
  std::string auth_password_file;
  bool json = false;
};

struct NameOptions {
  std::string domain;
  bool json = false;
};

struct ListOptions {
  bool json = false;
};

void print_added(const Context& ctx, const store::Domain& d, bool new_customer) {
  if (new_customer) fmt::print("Note: customer {} did not exist and was created.\n", d.customer);
  fmt::print("Added domain {} for customer {} ({}), delivering to {}.\n", d.name, d.customer,
             store::to_string(d.status), format_backend(d.backend_host, d.backend_port));
  print_dns_instructions(ctx.config, d);
}

int run_add(const Context& ctx, AddOptions& o) {
  // Without --trust auth the file is not read: the library refuses the combination.
  if (!o.auth_password_file.empty() && o.in.trust != "auth") o.in.auth_password = "";
  if (!o.auth_password_file.empty() && o.in.trust == "auth") {
    auto pw = read_secret_file(o.auth_password_file);
    if (!pw) return usage_error(pw.error());
    o.in.auth_password = std::move(*pw);
  }
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto added = admin::add_domain(actor(ctx, **store), o.in);
  if (!added) return fail(added.failure());
  if (o.json) {
    nlohmann::ordered_json j = domain_json(ctx.config, added->domain);
    j["customer_created"] = added->customer_created;
    print_json_line(j);
    return kExitOk;
  }
  print_added(ctx, added->domain, added->customer_created);
  return kExitOk;
}

int run_show(const Context& ctx, const NameOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto d = admin::show_domain(actor(ctx, **store), o.domain);
  if (!d) return fail(d.failure());
  if (o.json) print_json_line(domain_json(ctx.config, *d));
  else print_domain_details(ctx.config, *d);
  return kExitOk;
}

int run_list(const Context& ctx, const ListOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto domains = admin::list_domains(actor(ctx, **store));
  if (!domains) return fail(domains.failure());
  if (!o.json) {
    print_domain_table(*domains);
    return kExitOk;
  }
  for (const auto& d : *domains) print_json_line(domain_json(ctx.config, d));
  return kExitOk;
}

int run_remove(const Context& ctx, const NameOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto before = admin::remove_domain(actor(ctx, **store), o.domain);
  if (!before) return fail(before.failure());
  if (o.json) {
    nlohmann::ordered_json j = domain_json(ctx.config, *before);
    j["removed"] = true;
    print_json_line(j);
    return kExitOk;
  }
  fmt::print("Removed domain {}.\n", before->name);
  return kExitOk;
}

void add_add_command(CLI::App& group, Commands& out) {
  auto o = std::make_shared<AddOptions>();
  CLI::App* cmd = group.add_subcommand("add", "Add a customer domain (pending verification unless --active)");
  cmd->add_option("DOMAIN", o->in.domain, "Domain name, e.g. example.com")->required();
  cmd->add_option("--customer", o->in.customer, "Owning customer (created if it does not exist)")->required();
  cmd->add_option("--backend", o->in.backend, "Customer mail server: HOST[:PORT], IPv6 as [ADDRESS]:PORT (port 25)")
      ->required();
  cmd->add_option("--recipients", o->in.recipients, "Recipient validation: accept-all, callout or list")
      ->capture_default_str();
  cmd->add_option("--tls", o->in.tls, "TLS to the backend: none, may, encrypt or dane")->capture_default_str();
  cmd->add_option("--trust", o->in.trust, "How the backend trusts us: ip or auth")->capture_default_str();
  cmd->add_option("--auth-user", o->in.auth_user, "SMTP AUTH user for --trust auth");
  cmd->add_option("--auth-password-file", o->auth_password_file,
                  "Read the SMTP AUTH password from this file ('-' = stdin); never given on the command line");
  cmd->add_flag("--active", o->in.active, "Skip DNS verification (operator only)");
  cmd->add_flag("--force", o->in.force,
                "Go ahead despite a risk: a risky setting (tls=dane without delivery.dane_trust_anchor, trust=auth "
                "without a password, --recipients list with --active and no recipients), or, operators only, a "
                "domain on the high-value blocklist");
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_add(ctx, *o); }});
}

void add_show_command(CLI::App& group, Commands& out) {
  auto o = std::make_shared<NameOptions>();
  CLI::App* cmd = group.add_subcommand("show", "Show a domain's settings and the DNS records to publish");
  cmd->add_option("DOMAIN", o->domain, "Domain name")->required();
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_show(ctx, *o); }});
}

void add_list_command(CLI::App& group, Commands& out) {
  auto o = std::make_shared<ListOptions>();
  CLI::App* cmd = group.add_subcommand("list", "List all domains");
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_list(ctx, *o); }});
}

void add_remove_command(CLI::App& group, Commands& out) {
  auto o = std::make_shared<NameOptions>();
  CLI::App* cmd = group.add_subcommand("remove", "Remove a domain (mail for it is refused from then on)");
  cmd->add_option("DOMAIN", o->domain, "Domain name")->required();
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_remove(ctx, *o); }});
}

}  // namespace

void add_domain_commands(CLI::App& root, Commands& out) {
  CLI::App* group = root.add_subcommand("domain", "Manage customer domains");
  add_add_command(*group, out);
  add_show_command(*group, out);
  add_list_command(*group, out);
  add_remove_command(*group, out);
  add_domain_dns_commands(*group, out);
  add_domain_settings_commands(*group, out);
}

}  // namespace mxguard::console
