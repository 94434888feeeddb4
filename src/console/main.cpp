// Entry point of `mxguard`, the operator console: parses the command line,
// resolves the configuration and runs exactly one subcommand.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

#include "console.hpp"
#include "onboarding.hpp"

namespace mxguard::console {

int fail(int code, std::string_view message) {
  // Flush first so that, on a terminal, the error follows whatever was printed.
  std::fflush(stdout);
  std::string line = "mxguard: ";
  for (char c : message) line += (c == '\n' || c == '\r') ? ' ' : c;
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
  return code;
}

void add_json_flag(CLI::App& cmd, bool& json) {
  cmd.add_flag("--json", json, "Print JSON for scripts (lists: one object per line)");
}

Result<std::unique_ptr<store::ConfigStore>> open_config_store(const Context& ctx) {
  return store::ConfigStore::open(ctx.config.state_dir);
}

ManagedDomain open_managed_domain(const Context& ctx, std::string_view typed) {
  ManagedDomain m;
  auto name = normalize_domain(typed);
  if (!name) {
    m.exit_code = usage_error(name.error());
    return m;
  }
  auto store = open_config_store(ctx);
  if (!store) {
    m.exit_code = runtime_error(store.error());
    return m;
  }
  int code;
  auto d = domain_for(**store, ctx.principal, *name, code);
  if (!d) {
    m.exit_code = fail(code, d.error());
    return m;
  }
  m.store = std::move(*store);
  m.domain = std::move(*d);
  return m;
}

namespace {

// The deepest subcommand the user named: a leaf command or a bare group.
CLI::App* selected_app(CLI::App& root) {
  CLI::App* at = &root;
  while (!at->get_subcommands().empty()) at = at->get_subcommands().front();
  return at;
}

// A bare group ("mxguard domain") is a request for guidance: show its help,
// then fail, so scripts do not mistake it for a successful command.
int missing_subcommand(CLI::App& at, bool is_root) {
  // CLI11 prefixes a subcommand's usage line with its parents' names only when told them.
  std::string help = at.help(is_root ? "" : "mxguard");
  std::fwrite(help.data(), 1, help.size(), stdout);
  if (is_root) return usage_error("a command is required (see mxguard --help)");
  return usage_error(fmt::format("'{}' needs a subcommand (see mxguard {} --help)", at.get_name(), at.get_name()));
}

int parse_and_run(int argc, char** argv) {
  CLI::App app{"MxGuard console: customers, domains, rules, scanning and the mail queue.", "mxguard"};
  // Fallthrough lets global options such as --config follow the subcommand.
  app.fallthrough();
  app.require_subcommand(0, 1);
  std::string config_path, as_user;
  app.add_option("--as", as_user, "Run the command with this user's rights (tenant isolation)");
  app.add_option("--config", config_path,
                 "Configuration file (default: $MXGUARD_CONFIG, then /etc/mxguard/mxguard.toml, "
                 "then a built-in demo configuration)");

  Commands commands;
  add_customer_commands(app, commands);
  add_domain_commands(app, commands);
  add_queue_commands(app, commands);
  add_recipient_commands(app, commands);
  add_list_commands(app, commands);
  add_user_commands(app, commands);
  add_audit_commands(app, commands);
  add_rules_commands(app, commands);
  add_scan_commands(app, commands);
  add_feed_commands(app, commands);
  add_quarantine_commands(app, commands);
  add_console_menu_commands(app, commands);
  add_backup_commands(app, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and friends are "errors" with exit code 0: CLI11 prints the help.
    if (e.get_exit_code() == 0) return app.exit(e);
    return usage_error(e.what());
  }

  CLI::App* at = selected_app(app);
  auto cmd = std::find_if(commands.begin(), commands.end(), [at](const Command& c) { return c.app == at; });
  if (cmd == commands.end()) return missing_subcommand(*at, at == &app);

  Context ctx;
  try {
    ctx.config = resolve_config(config_path);
  } catch (const ConfigError& e) {
    return usage_error(e.what());
  }
  // Said on stderr so scripts reading stdout are unaffected, and said at all
  // so a new user knows where the state dir the console creates comes from.
  if (config_source(config_path).empty())
    fail(kExitOk, fmt::format("no --config and no /etc/mxguard/mxguard.toml: using the demo configuration "
                              "(state in {})", ctx.config.state_dir));
  if (!cmd->needs_store) {
    if (!as_user.empty()) return usage_error(fmt::format("'{}' is for the operator only, not with --as", at->get_name()));
    return cmd->run(ctx);
  }
  {
    auto store = open_config_store(ctx);
    if (!store) return runtime_error(store.error());
    auto who = resolve_principal(**store, as_user);
    if (!who) return usage_error(who.error());
    ctx.principal = std::move(*who);
  }
  return cmd->run(ctx);
}

}  // namespace
}  // namespace mxguard::console

int main(int argc, char** argv) {
  try {
    return mxguard::console::parse_and_run(argc, argv);
  } catch (const std::exception& e) {
    // Only programming errors get here; still one line and a runtime exit code.
    return mxguard::console::runtime_error(fmt::format("internal error: {}", e.what()));
  }
}
