// `mxguard domain set|suspend|resume`: change a domain's settings. Every
// KEY=VALUE is checked before anything is written; one write applies them all,
// and the engine sees them at the next transaction.
#include <fmt/format.h>

#include <memory>

#include "console.hpp"
#include "domain_view.hpp"
#include "output.hpp"

namespace mxguard::console {

namespace {

struct SetOptions {
  std::string domain;
  std::vector<std::string> assignments;
  std::string auth_password_file;
  bool force = false;
  bool json = false;
};

struct NameOption {
  std::string domain;
  bool json = false;
};

int run_set(const Context& ctx, const SetOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  admin::DomainSettings in;
  in.assignments = o.assignments;
  in.password_given = !o.auth_password_file.empty();
  in.force = o.force;
  // A refused domain is reported before the password file (maybe stdin) is read.
  if (in.password_given) {
    if (auto m = admin::show_domain(actor(ctx, **store), o.domain); !m) return fail(m.failure());
    auto pw = read_secret_file(o.auth_password_file);
    if (!pw) return usage_error(pw.error());
    in.auth_password = std::move(*pw);
  }
  auto d = admin::set_domain(actor(ctx, **store), o.domain, in);
  if (!d) return fail(d.failure());
  if (o.json) {
    print_json_line(domain_json(ctx.config, *d));
    return kExitOk;
  }
  fmt::print("Updated {}: {}{}.\n", d->name, fmt::join(o.assignments, ", "),
             o.auth_password_file.empty() ? "" : (o.assignments.empty() ? "auth password" : ", auth password"));
  return kExitOk;
}

int run_status(const Context& ctx, const NameOption& o, store::DomainStatus to) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto d = admin::set_domain_status(actor(ctx, **store), o.domain, to);
  if (!d) return fail(d.failure());
  if (o.json) print_json_line(domain_json(ctx.config, *d));
  else fmt::print("{} is now {}.\n", d->name, store::to_string(to));
  return kExitOk;
}

}  // namespace

void add_domain_settings_commands(CLI::App& group, Commands& out) {
  auto set = std::make_shared<SetOptions>();
  CLI::App* cmd = group.add_subcommand("set", "Change domain settings: KEY=VALUE ...");
  cmd->add_option("DOMAIN", set->domain, "Domain name")->required();
  cmd->add_option("SETTINGS", set->assignments, "backend=HOST[:PORT] tls=... trust=... auth_user=... "
                                                "recipients=... recipient_delimiter=CHARS reject_threshold=N "
                                                "quarantine_threshold=N "
                                                "greylist_threshold=N digest_from=ADDR quarantine_days=N");
  cmd->add_option("--auth-password-file", set->auth_password_file,
                  "Read the SMTP AUTH password from this file ('-' = stdin); an empty one keeps the stored password");
  cmd->add_flag("--force", set->force,
                "Set it even when risky: greylist_threshold below 0, recipients=list with no recipients, tls=dane "
                "without delivery.dane_trust_anchor, trust=auth without a stored password");
  add_json_flag(*cmd, set->json);
  out.push_back({cmd, [set](const Context& ctx) { return run_set(ctx, *set); }});

  struct StatusCommand {
    const char* name;
    store::DomainStatus to;
    const char* help;
  };
  static constexpr StatusCommand kStatusCommands[] = {
      {"suspend", store::DomainStatus::kSuspended, "Suspend a domain: its mail is deferred with 450 4.7.1"},
      {"resume", store::DomainStatus::kActive, "Resume a suspended domain"},
  };
  for (const StatusCommand& sc : kStatusCommands) {
    auto o = std::make_shared<NameOption>();
    CLI::App* c = group.add_subcommand(sc.name, sc.help);
    c->add_option("DOMAIN", o->domain, "Domain name")->required();
    add_json_flag(*c, o->json);
    store::DomainStatus to = sc.to;
    out.push_back({c, [o, to](const Context& ctx) { return run_status(ctx, *o, to); }});
  }
}

}  // namespace mxguard::console
