// `mxguard user ...` and `mxguard audit`: accounts with roles, and the log of
// every change, over the admin library. Passwords are never printed.
#include <sodium.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <memory>

#include "console.hpp"
#include "mxguard/admin/users.hpp"
#include "output.hpp"

namespace mxguard::console {

namespace {

struct UserOptions {
  std::string name, role, customer, domain, address, password_file;
  std::vector<std::string> shadows;
  bool json = false;
};

int run_add(const Context& ctx, const UserOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  admin::NewUser in{o.name, o.role, o.customer, o.domain, o.address, o.shadows, std::nullopt};
  if (!o.password_file.empty()) {
    auto pw = read_secret_file(o.password_file);
    if (!pw) return usage_error(pw.error());
    in.password = std::move(*pw);
  }
  auto u = admin::add_user(actor(ctx, **store), in);
  if (in.password) sodium_memzero(in.password->data(), in.password->size());
  if (!u) return fail(u.failure());
  if (o.json) print_json_line(admin::user_json(*u));
  else fmt::print("Added {} {}.\n", store::to_string(u->role), u->name);
  return kExitOk;
}

int run_list(const Context& ctx, const UserOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto users = admin::list_users(actor(ctx, **store));
  if (!users) return fail(users.failure());
  Table t({"USER", "ROLE", "CUSTOMER", "SCOPE"});
  for (const auto& u : *users) {
    if (o.json) print_json_line(admin::user_json(u));
    else t.add_row({u.name, std::string(store::to_string(u.role)), u.customer, u.domain.empty() ? u.address : u.domain});
  }
  if (!o.json) t.print();
  return kExitOk;
}

int run_remove(const Context& ctx, const UserOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto u = admin::remove_user(actor(ctx, **store), o.name);
  if (!u) return fail(u.failure());
  if (o.json) {
    nlohmann::ordered_json j = admin::user_json(*u);
    j["removed"] = true;
    print_json_line(j);
    return kExitOk;
  }
  fmt::print("Removed user {}.\n", o.name);
  return kExitOk;
}

// The new password comes from stdin so it never shows in `ps` or shell
// history; the target is checked before stdin is read.
int run_passwd(const Context& ctx, const UserOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  if (auto t = admin::password_target(actor(ctx, **store), o.name); !t) return fail(t.failure());
  auto pw = read_secret_file("-");
  if (!pw) return usage_error(pw.error());
  auto u = admin::set_password(actor(ctx, **store), o.name, std::move(*pw));
  if (!u) return fail(u.failure());
  if (o.json) {
    print_json_line(admin::user_json(*u));
    return kExitOk;
  }
  fmt::print("Changed the password of {}.\n", o.name);
  return kExitOk;
}

int run_set(const Context& ctx, const UserOptions& o, const std::vector<std::string>& pairs) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto u = admin::set_user_settings(actor(ctx, **store), o.name, pairs);
  if (!u) return fail(u.failure());
  if (o.json) {
    print_json_line(admin::user_json(*u));
    return kExitOk;
  }
  // What was set, in the order given; a digest change reads as it always has.
  std::vector<std::string> said;
  for (const auto& p : pairs) {
    std::string key = p.substr(0, p.find('='));
    std::string text = key == "digest" ? fmt::format("digest={}", u->digest ? "on" : "off")
                                       : fmt::format("shadows={}", u->shadows.empty() ? "(none)"
                                                                                      : fmt::format("{}", fmt::join(u->shadows, ",")));
    if (std::find(said.begin(), said.end(), text) == said.end()) said.push_back(std::move(text));
  }
  fmt::print("Changed user {}: {}.\n", u->name, fmt::join(said, " "));
  return kExitOk;
}

struct AuditOptions {
  bool json = false;
  admin::AuditFilter filter;
};

int run_audit(const Context& ctx, const AuditOptions& o) {
  const bool json = o.json;
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto entries = admin::audit_log(actor(ctx, **store), o.filter);
  if (!entries) {
    const admin::Failure& f = entries.failure();
    if (!f.field.empty()) return fail(exit_code_for(f), fmt::format("--{}: {}", f.field, f.message));
    return fail(f);
  }
  for (const auto& e : *entries) {
    auto parse = [](const std::string& s) {
      return s.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json::parse(s, nullptr, false);
    };
    if (json)
      print_json_line({{"time", iso8601_ms(e.time_ms)}, {"principal", e.principal}, {"action", e.action},
                       {"object", e.object}, {"before", parse(e.before)}, {"after", parse(e.after)}});
    else
      fmt::print("{} {} {} {}{}{}\n", iso8601(e.time_ms), printable(e.principal), e.action, printable(e.object),
                 e.before.empty() ? "" : " before=" + printable(e.before),
                 e.after.empty() ? "" : " after=" + printable(e.after));
  }
  return kExitOk;
}

}  // namespace

void add_user_commands(CLI::App& root, Commands& out) {
  CLI::App* group = root.add_subcommand("user", "Console and dashboard users and their roles");
  auto a = std::make_shared<UserOptions>();
  CLI::App* add = group->add_subcommand("add", "Add a user");
  add->add_option("NAME", a->name, "User name")->required();
  add->add_option("--role", a->role, "operator, customer-admin, postmaster or user")->required();
  add->add_option("--customer", a->customer, "customer-admin: the customer");
  add->add_option("--domain", a->domain, "postmaster: the domain");
  add->add_option("--address", a->address, "user: their address");
  add->add_option("--shadow", a->shadows, "user: further addresses seen as theirs");
  add->add_option("--password-file", a->password_file, "Read the password from this file ('-' = stdin)");
  add_json_flag(*add, a->json);
  out.push_back({add, [a](const Context& ctx) { return run_add(ctx, *a); }});
  auto l = std::make_shared<UserOptions>();
  CLI::App* list = group->add_subcommand("list", "List users");
  add_json_flag(*list, l->json);
  out.push_back({list, [l](const Context& ctx) { return run_list(ctx, *l); }});
  auto r = std::make_shared<UserOptions>();
  CLI::App* rm = group->add_subcommand("remove", "Remove a user");
  rm->add_option("NAME", r->name, "User name")->required();
  add_json_flag(*rm, r->json);
  out.push_back({rm, [r](const Context& ctx) { return run_remove(ctx, *r); }});
  auto pw = std::make_shared<UserOptions>();
  CLI::App* passwd = group->add_subcommand("passwd", "Set a user's password, read from stdin");
  passwd->add_option("USER", pw->name, "User name")->required();
  add_json_flag(*passwd, pw->json);
  out.push_back({passwd, [pw](const Context& ctx) { return run_passwd(ctx, *pw); }});
  auto st = std::make_shared<UserOptions>();
  auto pairs = std::make_shared<std::vector<std::string>>();
  CLI::App* set = group->add_subcommand("set", "Change a user's settings: digest=on|off, shadows=ADDR[,ADDR...]");
  set->add_option("NAME", st->name, "User name")->required();
  set->add_option("SETTING", *pairs, "KEY=VALUE (digest=on|off, shadows=ADDR,... or empty for none)")->required();
  add_json_flag(*set, st->json);
  out.push_back({set, [st, pairs](const Context& ctx) { return run_set(ctx, *st, *pairs); }});
}

void add_audit_commands(CLI::App& root, Commands& out) {
  auto o = std::make_shared<AuditOptions>();
  CLI::App* cmd = root.add_subcommand(
      "audit", "Show the audit log of every change (operators; with --as, what that user's role may read)");
  cmd->add_option("--since", o->filter.since, "Entries from this time (2026-05-01, 2h, @UNIX, ...)");
  cmd->add_option("--until", o->filter.until, "Entries up to this time");
  cmd->add_option("--limit", o->filter.limit, "Only the newest N entries");
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_audit(ctx, *o); }});
}

}  // namespace mxguard::console
