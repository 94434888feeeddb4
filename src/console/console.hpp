// Shared plumbing of the `mxguard` console: exit codes, the command registry
// and the context every command runs with.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "mxguard/admin/domains.hpp"
#include "mxguard/core/config.hpp"
#include "mxguard/core/result.hpp"
#include "access.hpp"
#include "exit_codes.hpp"
#include "mxguard/store/config_store.hpp"

namespace mxguard::console {


// What a command needs beyond its own options; built only after parsing, so
// `--help` works even when the configuration is broken.
struct Context {
  Config config;
  Principal principal;  // the operator at the console, or --as USER
};

// A leaf subcommand and the function that runs it once it was parsed.
struct Command {
  CLI::App* app;
  std::function<int(const Context&)> run;
  // Backup and restore work on the state dir's files: opening the config
  // store first would create the very state dir a restore must find absent.
  bool needs_store = true;
};
using Commands = std::vector<Command>;

// Each concern registers its subcommands under the root application.
void add_customer_commands(CLI::App& root, Commands& out);
void add_domain_commands(CLI::App& root, Commands& out);
void add_domain_settings_commands(CLI::App& domain_group, Commands& out);
void add_recipient_commands(CLI::App& root, Commands& out);
void add_list_commands(CLI::App& root, Commands& out);
void add_user_commands(CLI::App& root, Commands& out);
void add_audit_commands(CLI::App& root, Commands& out);
void add_queue_commands(CLI::App& root, Commands& out);
void add_rules_commands(CLI::App& root, Commands& out);
void add_scan_commands(CLI::App& root, Commands& out);
void add_feed_commands(CLI::App& root, Commands& out);
void add_track_commands(CLI::App& root, Commands& out);
void add_stats_commands(CLI::App& root, Commands& out);
void add_quarantine_commands(CLI::App& root, Commands& out);
void add_console_menu_commands(CLI::App& root, Commands& out);
void add_backup_commands(CLI::App& root, Commands& out);
void add_status_commands(CLI::App& root, Commands& out);
void add_digest_commands(CLI::App& root, Commands& out);

// Prints "mxguard: <message>" as exactly one line on stderr and returns `code`.
int fail(int code, std::string_view message);
inline int usage_error(std::string_view message) { return fail(kExitUsage, message); }
inline int runtime_error(std::string_view message) { return fail(kExitRuntime, message); }
// Prints an admin operation's refusal and returns its exit code (exit_code_for).
inline int fail(const admin::Failure& f) { return fail(exit_code_for(f), console_text(f)); }

// The admin library's view of who runs this command, on `store`.
inline admin::Actor actor(const Context& ctx, store::ConfigStore& store) {
  return {ctx.config, store, ctx.principal};
}

// Adds the `--json` flag with the same wording on every command that has it.
void add_json_flag(CLI::App& cmd, bool& json);

// Opens the config environment under the configured state_dir.
Result<std::unique_ptr<store::ConfigStore>> open_config_store(const Context& ctx);

// The usual start of a command on one domain: the name as typed is
// normalised, the store opened and the principal's rights checked. On
// failure the message is already printed and `exit_code` is non-zero.
struct ManagedDomain {
  std::unique_ptr<store::ConfigStore> store;
  store::Domain domain;
  int exit_code = kExitOk;
};
ManagedDomain open_managed_domain(const Context& ctx, std::string_view typed);

}  // namespace mxguard::console
