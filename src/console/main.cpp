// Entry point of `mxguard`, the operator console: parses the command line,
// resolves the configuration and runs exactly one subcommand.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
  auto store = open_config_store(ctx);
  if (!store) {
    m.exit_code = runtime_error(store.error());
    return m;
  }
  auto d = admin::show_domain(actor(ctx, **store), typed);
  if (!d) {
    m.exit_code = fail(d.failure());
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

// Edit distance with adjacent transpositions counted as one edit, since
// "domian" and "lsit" are the typos people make.
size_t typo_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// After a failed parse: the first word that names no subcommand of the group
// it was typed under, with the closest subcommand name if one is near enough.
// Returns nothing when the error was about something else.
std::optional<std::string> unknown_command_message(CLI::App& root, int argc, char** argv) {
  CLI::App* at = &root;
  for (int i = 1; i < argc; ++i) {
    std::string_view word = argv[i];
    if (word.starts_with("-")) {
      // Skip the value of an option given as "--config FILE".
      const CLI::Option* opt = word.find('=') == std::string_view::npos
                                   ? at->get_option_no_throw(std::string(word))
                                   : nullptr;
      if (opt == nullptr) opt = root.get_option_no_throw(std::string(word));
      if (opt != nullptr && opt->get_type_size_min() > 0) ++i;
      continue;
    }
    if (at->get_subcommands({}).empty()) return std::nullopt;  // a leaf: the word is its argument
    auto subs = at->get_subcommands({});
    auto next = std::find_if(subs.begin(), subs.end(), [&](const CLI::App* s) { return s->check_name(std::string(word)); });
    if (next != subs.end()) {
      at = *next;
      continue;
    }
    if (!at->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty()) return std::nullopt;
    std::string best;
    size_t best_distance = 3;  // more than two edits away is another word, not a typo
    for (const CLI::App* sub : subs) {
      size_t distance = typo_distance(word, sub->get_name());
      if (distance < best_distance && distance < word.size()) {
        best_distance = distance;
        best = sub->get_name();
      }
    }
    std::string message = fmt::format("unknown command '{}'", word);
    if (!best.empty()) message += fmt::format("; did you mean '{}'?", best);
    else message += fmt::format(" (see mxguard{}{} --help)", at == &root ? "" : " ", at == &root ? "" : at->get_name());
    return message;
  }
  return std::nullopt;
}

// The exit status table, at the end of `mxguard --help`.
std::string exit_codes_help() {
  std::string out = "Exit codes:";
  for (const auto& e : kExitCodes) out += fmt::format("\n  {}  {}", e.code, e.meaning);
  return out;
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
  app.set_version_flag("--version", "mxguard " MXGUARD_VERSION, "Print the version and exit");
  app.footer(exit_codes_help());
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
  add_track_commands(app, commands);
  add_stats_commands(app, commands);
  add_quarantine_commands(app, commands);
  add_console_menu_commands(app, commands);
  add_backup_commands(app, commands);
  add_status_commands(app, commands);
  add_digest_commands(app, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and friends are "errors" with exit code 0: CLI11 prints the help.
    if (e.get_exit_code() == 0) return app.exit(e);
    if (auto unknown = unknown_command_message(app, argc, argv)) return usage_error(*unknown);
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
