// `mxguard domain set|suspend|resume`: change a domain's settings. Every
// KEY=VALUE is checked before anything is written; one write applies them all,
// and the engine sees them at the next transaction.
#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <memory>
#include <set>

#include "console.hpp"
#include "domain_view.hpp"
#include "onboarding.hpp"
#include "output.hpp"
#include "risks.hpp"
#include "validate.hpp"

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

// The keys of KEY=VALUE assignments, for the risk checks.
std::set<std::string> changed_keys(const std::vector<std::string>& assignments) {
  std::set<std::string> keys;
  for (const auto& a : assignments) keys.insert(a.substr(0, a.find('=')));
  return keys;
}

Result<double> parse_score(std::string_view key, std::string_view v) {
  std::string s(v);
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(d) || d < -1000 || d > 1000)
    return Error{fmt::format("{}: '{}' is not a score between -1000 and 1000", key, v)};
  return d;
}

// Applies one KEY=VALUE to `d`, or says what is wrong with it.
Status apply_setting(store::Domain& d, std::string_view assignment) {
  size_t eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0)
    return Error{fmt::format("'{}' is not KEY=VALUE", assignment)};
  std::string_view key = assignment.substr(0, eq), v = assignment.substr(eq + 1);
  if (key == "backend") {
    auto b = parse_backend(v);
    if (!b) return Error{b.error()};
    d.backend_host = b->host;
    d.backend_port = b->port;
  } else if (key == "tls") {
    if (auto s = check_choice("tls", v, {"none", "may", "encrypt", "dane"}); !s) return s;
    d.tls_policy = std::string(v);
  } else if (key == "trust") {
    if (auto s = check_choice("trust", v, {"ip", "auth"}); !s) return s;
    d.trust = std::string(v);
  } else if (key == "auth_user") {
    if (!v.empty())
      if (auto s = check_auth_user(v); !s) return s;
    d.auth_user = std::string(v);
  } else if (key == "recipients") {
    if (auto s = check_choice("recipients", v, {"accept-all", "callout", "list"}); !s) return s;
    d.recipients_mode = std::string(v);
  } else if (key == "recipient_delimiter") {
    if (auto s = store::check_recipient_delimiter(v); !s) return s;
    d.recipient_delimiter = std::string(v);
  } else if (key == "reject_threshold" || key == "quarantine_threshold" || key == "greylist_threshold") {
    auto score = parse_score(key, v);
    if (!score) return Error{score.error()};
    (key == "reject_threshold" ? d.reject_threshold
     : key == "quarantine_threshold" ? d.quarantine_threshold : d.greylist_threshold) = *score;
  } else if (key == "digest_from") {
    size_t at = v.rfind('@');
    if (at == std::string_view::npos || at == 0 || !normalize_domain(v.substr(at + 1)) ||
        v.find_first_of(" \t<>\"") != std::string_view::npos)
      return Error{fmt::format("digest_from: '{}' is not an address", v)};
    d.digest_from = std::string(v);
  } else if (key == "quarantine_days") {
    unsigned days = 0;
    auto r = std::from_chars(v.data(), v.data() + v.size(), days);
    if (r.ec != std::errc() || r.ptr != v.data() + v.size() || days < 1 || days > 3650)
      return Error{fmt::format("quarantine_days: '{}' is not a number of days from 1 to 3650", v)};
    d.quarantine_days = days;
  } else {
    return Error{fmt::format("unknown setting '{}' (backend, tls, trust, auth_user, recipients, recipient_delimiter, "
                             "reject_threshold, quarantine_threshold, greylist_threshold, digest_from, "
                             "quarantine_days)", key)};
  }
  return {};
}

int run_set(const Context& ctx, const SetOptions& o) {
  if (o.assignments.empty() && o.auth_password_file.empty())
    return usage_error("nothing to change: give KEY=VALUE settings or --auth-password-file");
  auto m = open_managed_domain(ctx, o.domain);
  if (m.exit_code) return m.exit_code;
  std::string password;
  if (!o.auth_password_file.empty()) {
    auto pw = read_secret_file(o.auth_password_file);
    if (!pw) return usage_error(pw.error());
    password = std::move(*pw);
  }
  RiskFacts facts;
  facts.dane_trust_anchor = !ctx.config.delivery.dane_trust_anchor.empty();
  auto known = m.store->recipients(m.domain.name);
  if (!known) return runtime_error(known.error());
  facts.recipients = known->size();
  std::set<std::string> keys = changed_keys(o.assignments);
  bool risky = false;
  // The settings are applied to the record as it is inside the write
  // transaction, so a concurrent change to other settings is not lost.
  store::Domain before;
  bool input_error = false;
  auto updated = m.store->update_domain(m.domain.name, [&](store::Domain& d) -> Status {
    before = d;
    for (const auto& a : o.assignments) {
      if (auto s = apply_setting(d, a); !s) {
        input_error = true;
        return s;
      }
    }
    if (!password.empty()) d.auth_password = password;  // empty keeps the stored password
    input_error = true;
    if (d.reject_threshold < d.quarantine_threshold)
      return Error{fmt::format("reject_threshold ({}) must be >= quarantine_threshold ({})", d.reject_threshold,
                               d.quarantine_threshold)};
    if (d.trust == "auth" && d.auth_user.empty()) return Error{"trust=auth needs auth_user"};
    input_error = false;
    if (auto risks = setting_risks(d, keys, facts); !risks.empty() && !o.force) {
      risky = true;
      return Error{force_refusal(risks)};
    }
    return {};
  });
  if (!updated && risky) return fail(kExitNeedsForce, updated.error());
  if (!updated) return input_error ? usage_error(updated.error()) : runtime_error(updated.error());
  if (!*updated) return usage_error(fmt::format("no such domain: {}", m.domain.name));
  const store::Domain* d = &**updated;
  if (auto s = audit(*m.store, ctx.principal, "domain.set", d->name, domain_record(before), domain_record(*d)); !s)
    return runtime_error(s.error());
  if (o.json) {
    print_json_line(domain_json(ctx.config, *d));
    return kExitOk;
  }
  fmt::print("Updated {}: {}{}.\n", d->name, fmt::join(o.assignments, ", "),
             o.auth_password_file.empty() ? "" : (o.assignments.empty() ? "auth password" : ", auth password"));
  return kExitOk;
}

int run_status(const Context& ctx, const NameOption& o, store::DomainStatus to) {
  auto m = open_managed_domain(ctx, o.domain);
  if (m.exit_code) return m.exit_code;
  if (!is_operator(ctx.principal) && ctx.principal.role != store::Role::kCustomerAdmin)
    return fail(kExitNotPermitted, not_permitted("suspending or resuming domains"));
  store::DomainStatus was{};
  bool pending = false;
  auto updated = m.store->update_domain(m.domain.name, [&](store::Domain& d) -> Status {
    was = d.status;
    if (d.status == store::DomainStatus::kPendingVerification) {
      pending = true;
      return Error{fmt::format("{} is pending verification; verify it first", d.name)};
    }
    d.status = to;
    return {};
  });
  if (!updated) return pending ? usage_error(updated.error()) : runtime_error(updated.error());
  if (!*updated) return usage_error(fmt::format("no such domain: {}", m.domain.name));
  const store::Domain* d = &**updated;
  if (auto s = audit(*m.store, ctx.principal, to == store::DomainStatus::kActive ? "domain.resume" : "domain.suspend",
                     d->name, {{"status", store::to_string(was)}}, {{"status", store::to_string(to)}});
      !s)
    return runtime_error(s.error());
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
