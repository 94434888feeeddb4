// `mxguard domain ...`: customer domains, their backends and onboarding state.
#include <fmt/format.h>

#include <memory>
#include <set>

#include "console.hpp"
#include "dns_commands.hpp"
#include "domain_view.hpp"
#include "onboarding.hpp"
#include "output.hpp"
#include "risks.hpp"
#include "token.hpp"
#include "validate.hpp"

namespace mxguard::console {

namespace {

struct AddOptions {
  std::string domain;
  std::string customer;
  std::string backend;
  std::string recipients = "accept-all";
  std::string tls = "may";
  std::string trust = "ip";
  std::string auth_user;
  std::string auth_password_file;
  bool active = false;
  bool force = false;
  bool json = false;
};

struct NameOptions {
  std::string domain;
  bool json = false;
};

struct ListOptions {
  bool json = false;
};

// Delivery settings that only make sense together: AUTH needs a user, and a
// user without AUTH would be silently ignored.
Status check_trust(const AddOptions& o) {
  if (auto s = check_choice("--trust", o.trust, {"ip", "auth"}); !s) return s;
  if (o.trust == "auth" && o.auth_user.empty()) return Error{"--trust auth needs --auth-user"};
  if (o.trust != "auth" && !o.auth_user.empty()) return Error{"--auth-user needs --trust auth"};
  if (!o.auth_user.empty()) return check_auth_user(o.auth_user);
  return {};
}

// Every check on the command line, before the store is even opened, so a
// refused command writes nothing.
Result<store::Domain> domain_from_options(const AddOptions& o) {
  auto name = normalize_domain(o.domain);
  if (!name) return Error{name.error()};
  if (auto s = check_customer_name(o.customer); !s) return Error{s.error()};
  auto backend = parse_backend(o.backend);
  if (!backend) return Error{backend.error()};
  if (auto s = check_choice("--recipients", o.recipients, {"accept-all", "callout", "list"}); !s) return Error{s.error()};
  if (auto s = check_choice("--tls", o.tls, {"none", "may", "encrypt", "dane"}); !s) return Error{s.error()};
  if (auto s = check_trust(o); !s) return Error{s.error()};

  store::Domain d;
  d.name = std::move(*name);
  d.customer = o.customer;
  d.status = o.active ? store::DomainStatus::kActive : store::DomainStatus::kPendingVerification;
  d.backend_host = backend->host;
  d.backend_port = backend->port;
  d.recipients_mode = o.recipients;
  d.tls_policy = o.tls;
  d.trust = o.trust;
  d.auth_user = o.auth_user;
  if (!o.auth_password_file.empty()) {
    if (o.trust != "auth") return Error{"--auth-password-file needs --trust auth"};
    auto pw = read_secret_file(o.auth_password_file);
    if (!pw) return Error{pw.error()};
    d.auth_password = std::move(*pw);
  }
  return d;
}

// The risky settings a new domain would start with. A pending domain gets
// no mail before it is verified, so recipients=list without recipients only
// counts when it starts active.
Result<std::vector<std::string>> new_domain_risks(const Context& ctx, const store::ConfigStore& store,
                                                  const store::Domain& d, bool active) {
  RiskFacts facts;
  facts.dane_trust_anchor = !ctx.config.delivery.dane_trust_anchor.empty();
  auto known = store.recipients(d.name);
  if (!known) return Error{known.error()};
  facts.recipients = known->size();
  std::set<std::string> keys = {"tls", "trust"};
  if (active) keys.insert("recipients");
  return setting_risks(d, keys, facts);
}

void print_added(const Context& ctx, const store::Domain& d, bool new_customer) {
  if (new_customer) fmt::print("Note: customer {} did not exist and was created.\n", d.customer);
  fmt::print("Added domain {} for customer {} ({}), delivering to {}.\n", d.name, d.customer,
             store::to_string(d.status), format_backend(d.backend_host, d.backend_port));
  print_dns_instructions(ctx.config, d);
}

int run_add(const Context& ctx, const AddOptions& o) {
  auto d = domain_from_options(o);
  if (!d) return usage_error(d.error());
  if (!may_manage_customer(ctx.principal, d->customer))
    return fail(kExitNotPermitted, not_permitted(fmt::format("adding domains for customer {}", d->customer)));
  if (!is_operator(ctx.principal) && o.active) return fail(kExitNotPermitted, not_permitted("--active is for operators"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto blocklist = Blocklist::load_default();
  if (!blocklist) return runtime_error(blocklist.error());
  // Anyone may confirm a risky setting with --force; only an operator's
  // --force lets a domain on the high-value blocklist in.
  auto refusal = admit_new_domain(**store, *d, *blocklist, o.force && is_operator(ctx.principal));
  if (!refusal) return runtime_error(refusal.error());
  if (*refusal) return fail((*refusal)->exit_code, (*refusal)->message);
  auto risks = new_domain_risks(ctx, **store, *d, o.active);
  if (!risks) return runtime_error(risks.error());
  if (!risks->empty() && !o.force) return fail(kExitNeedsForce, force_refusal(*risks));

  // Active domains get a token too, so every record has the same shape and a
  // later re-verification has something to check.
  auto token = new_verify_token();
  if (!token) return runtime_error(token.error());
  d->verify_token = std::move(*token);
  d->created_ms = now_ms();

  auto outcome = (*store)->add_domain(*d, true);
  if (!outcome) return runtime_error(outcome.error());
  using Outcome = store::ConfigStore::AddOutcome;
  // Someone else added the name between our check and our write.
  if (*outcome == Outcome::kDomainExists) return fail(kExitTaken, fmt::format("domain {} already exists", d->name));
  if (auto s = audit(**store, ctx.principal, "domain.add", d->name, nullptr, domain_record(*d)); !s)
    return runtime_error(s.error());
  if (o.json) {
    nlohmann::ordered_json j = domain_json(ctx.config, *d);
    j["customer_created"] = *outcome == Outcome::kAddedWithCustomer;
    print_json_line(j);
    return kExitOk;
  }
  print_added(ctx, *d, *outcome == Outcome::kAddedWithCustomer);
  return kExitOk;
}

int run_show(const Context& ctx, const NameOptions& o) {
  auto m = open_managed_domain(ctx, o.domain);
  if (m.exit_code) return m.exit_code;
  if (o.json) print_json_line(domain_json(ctx.config, m.domain));
  else print_domain_details(ctx.config, m.domain);
  return kExitOk;
}

int run_list(const Context& ctx, const ListOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto domains = (*store)->domains();
  if (!domains) return runtime_error(domains.error());
  std::erase_if(*domains, [&](const store::Domain& d) { return !may_manage_domain(ctx.principal, d); });
  if (!o.json) {
    print_domain_table(*domains);
    return kExitOk;
  }
  for (const auto& d : *domains) print_json_line(domain_json(ctx.config, d));
  return kExitOk;
}

int run_remove(const Context& ctx, const NameOptions& o) {
  auto name = normalize_domain(o.domain);
  if (!name) return usage_error(name.error());
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  int code;
  auto before = domain_for(**store, ctx.principal, *name, code);
  if (!before) return fail(code, before.error());
  if (ctx.principal.role == store::Role::kPostmaster)
    return fail(kExitNotPermitted, not_permitted("a postmaster cannot remove the domain"));
  auto removed = (*store)->remove_domain(*name);
  if (!removed) return runtime_error(removed.error());
  if (!*removed) return usage_error(fmt::format("no such domain: {}", *name));
  if (auto s = audit(**store, ctx.principal, "domain.remove", *name, domain_record(*before), nullptr); !s)
    return runtime_error(s.error());
  if (o.json) {
    nlohmann::ordered_json j = domain_json(ctx.config, *before);
    j["removed"] = true;
    print_json_line(j);
    return kExitOk;
  }
  fmt::print("Removed domain {}.\n", *name);
  return kExitOk;
}

void add_add_command(CLI::App& group, Commands& out) {
  auto o = std::make_shared<AddOptions>();
  CLI::App* cmd = group.add_subcommand("add", "Add a customer domain (pending verification unless --active)");
  cmd->add_option("DOMAIN", o->domain, "Domain name, e.g. example.com")->required();
  cmd->add_option("--customer", o->customer, "Owning customer (created if it does not exist)")->required();
  cmd->add_option("--backend", o->backend, "Customer mail server: HOST[:PORT], IPv6 as [ADDRESS]:PORT (port 25)")
      ->required();
  cmd->add_option("--recipients", o->recipients, "Recipient validation: accept-all, callout or list")
      ->capture_default_str();
  cmd->add_option("--tls", o->tls, "TLS to the backend: none, may, encrypt or dane")->capture_default_str();
  cmd->add_option("--trust", o->trust, "How the backend trusts us: ip or auth")->capture_default_str();
  cmd->add_option("--auth-user", o->auth_user, "SMTP AUTH user for --trust auth");
  cmd->add_option("--auth-password-file", o->auth_password_file,
                  "Read the SMTP AUTH password from this file ('-' = stdin); never given on the command line");
  cmd->add_flag("--active", o->active, "Skip DNS verification (operator only)");
  cmd->add_flag("--force", o->force,
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
