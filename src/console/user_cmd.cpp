// `mxguard user ...` and `mxguard audit`: accounts with roles, and the log of
// every change. Passwords are Argon2id hashes (libsodium) and never printed.
#include <sodium.h>

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "console.hpp"
#include "onboarding.hpp"
#include "output.hpp"
#include "validate.hpp"

namespace mxguard::console {

namespace {

struct UserOptions {
  std::string name, role, customer, domain, address, password_file;
  std::vector<std::string> shadows;
  bool json = false;
};

Result<std::string> read_password(const std::string& path) {
  auto pw = read_secret_file(path);
  if (!pw) return pw;
  if (pw->size() < 8) return Error{"password must have at least 8 characters"};
  return pw;
}

Result<std::string> hash_password(const std::string& pw) {
  if (sodium_init() < 0) return Error{"libsodium failed to initialise"};
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, pw.data(), pw.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                            crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
    return Error{"out of memory while hashing the password"};
  return std::string(out);
}

nlohmann::ordered_json user_json(const store::User& u) {
  return {{"name", u.name},       {"role", store::to_string(u.role)}, {"customer", u.customer},
          {"domain", u.domain},   {"address", u.address},           {"shadows", u.shadows},
          {"has_password", !u.password_hash.empty()}, {"created", iso8601(u.created_ms)}};
}

// Builds and checks the new user against the store and the principal's rights.
Result<store::User> user_from(const UserOptions& o, const store::ConfigStore& store, const Principal& p, int& code) {
  code = kExitUsage;
  store::User u;
  if (auto s = check_customer_name(o.name); !s) return Error{fmt::format("user name: {}", s.error())};
  u.name = o.name;
  auto role = store::role_from_string(o.role);
  if (!role) return Error{fmt::format("unknown role '{}' (operator, customer-admin, postmaster, user)", o.role)};
  u.role = *role;
  u.shadows = o.shadows;
  switch (u.role) {
    case store::Role::kOperator:
      break;
    case store::Role::kCustomerAdmin: {
      if (o.customer.empty()) return Error{"a customer-admin needs --customer"};
      auto c = store.customer(o.customer);
      if (!c) return Error{c.error()};
      if (!*c || !may_manage_customer(p, o.customer)) {
        code = is_operator(p) ? kExitUsage : kExitNotPermitted;
        return Error{is_operator(p) ? fmt::format("no such customer: {}", o.customer)
                                    : not_permitted(fmt::format("customer {}", o.customer))};
      }
      u.customer = o.customer;
      break;
    }
    case store::Role::kPostmaster:
    case store::Role::kUser: {
      std::string domain = o.domain;
      if (u.role == store::Role::kUser) {
        size_t at = o.address.rfind('@');
        if (at == std::string::npos || at == 0) return Error{"a user needs --address local@domain"};
        domain = o.address.substr(at + 1);
        u.address = o.address;
      } else if (domain.empty()) {
        return Error{"a postmaster needs --domain"};
      }
      auto name = normalize_domain(domain);
      if (!name) return Error{name.error()};
      auto d = domain_for(store, p, *name, code);
      if (!d) return Error{d.error()};
      u.customer = d->customer;
      if (u.role == store::Role::kPostmaster) u.domain = *name;
      break;
    }
  }
  // Only operators create operators and customer-admins.
  if (!is_operator(p) && (u.role == store::Role::kOperator || u.role == store::Role::kCustomerAdmin)) {
    code = kExitNotPermitted;
    return Error{not_permitted(fmt::format("creating a {}", store::to_string(u.role)))};
  }
  return u;
}

int run_add(const Context& ctx, const UserOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  int code;
  auto u = user_from(o, **store, ctx.principal, code);
  if (!u) return fail(code, u.error());
  if (!o.password_file.empty()) {
    auto pw = read_password(o.password_file);
    if (!pw) return usage_error(pw.error());
    auto hash = hash_password(*pw);
    sodium_memzero(pw->data(), pw->size());
    if (!hash) return runtime_error(hash.error());
    u->password_hash = std::move(*hash);
  }
  u->created_ms = now_ms();
  auto added = (*store)->add_user(*u);
  if (!added) return runtime_error(added.error());
  if (!*added) return fail(kExitTaken, fmt::format("user {} already exists", u->name));
  if (auto s = audit(**store, ctx.principal, "user.add", u->name, nullptr, user_json(*u)); !s)
    return runtime_error(s.error());
  if (o.json) print_json_line(user_json(*u));
  else fmt::print("Added {} {}.\n", store::to_string(u->role), u->name);
  return kExitOk;
}

// Users the principal may see: all for operators, their customer's for customer-admins.
bool may_see_user(const Principal& p, const store::User& u) {
  return is_operator(p) || (p.role == store::Role::kCustomerAdmin && u.customer == p.customer &&
                            u.role != store::Role::kOperator);
}

int run_list(const Context& ctx, const UserOptions& o) {
  if (!is_operator(ctx.principal) && ctx.principal.role != store::Role::kCustomerAdmin)
    return fail(kExitNotPermitted, not_permitted("listing users"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto users = (*store)->users();
  if (!users) return runtime_error(users.error());
  Table t({"USER", "ROLE", "CUSTOMER", "SCOPE"});
  for (const auto& u : *users) {
    if (!may_see_user(ctx.principal, u)) continue;
    if (o.json) print_json_line(user_json(u));
    else t.add_row({u.name, std::string(store::to_string(u.role)), u.customer, u.domain.empty() ? u.address : u.domain});
  }
  if (!o.json) t.print();
  return kExitOk;
}

int run_remove(const Context& ctx, const UserOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto u = (*store)->user(o.name);
  if (!u) return runtime_error(u.error());
  bool visible = *u && may_see_user(ctx.principal, **u);
  if (!visible) {
    if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted(fmt::format("user {}", o.name)));
    return usage_error(fmt::format("no such user: {}", o.name));
  }
  if (!is_operator(ctx.principal) && (*u)->role == store::Role::kCustomerAdmin)
    return fail(kExitNotPermitted, not_permitted("removing a customer-admin"));
  auto removed = (*store)->remove_user(o.name);
  if (!removed) return runtime_error(removed.error());
  if (auto s = audit(**store, ctx.principal, "user.remove", o.name, user_json(**u), nullptr); !s)
    return runtime_error(s.error());
  if (o.json) {
    nlohmann::ordered_json j = user_json(**u);
    j["removed"] = true;
    print_json_line(j);
    return kExitOk;
  }
  fmt::print("Removed user {}.\n", o.name);
  return kExitOk;
}

// The new password comes from stdin so it never shows in `ps` or shell history.
// Another tenant's user is reported as missing, not as forbidden, so the
// answer does not reveal that the name exists.
int run_passwd(const Context& ctx, const UserOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto u = (*store)->user(o.name);
  if (!u) return runtime_error(u.error());
  if (!*u || !may_see_user(ctx.principal, **u)) return usage_error(fmt::format("no such user: {}", o.name));
  if (!is_operator(ctx.principal) && (*u)->role == store::Role::kCustomerAdmin && (*u)->name != ctx.principal.name)
    return fail(kExitNotPermitted, not_permitted("changing another customer-admin's password"));
  auto pw = read_password("-");
  if (!pw) return usage_error(pw.error());
  auto hash = hash_password(*pw);
  sodium_memzero(pw->data(), pw->size());
  if (!hash) return runtime_error(hash.error());
  auto changed = (*store)->set_user_password(o.name, *hash);
  if (!changed) return runtime_error(changed.error());
  if (!*changed) return usage_error(fmt::format("no such user: {}", o.name));
  if (auto s = audit(**store, ctx.principal, "user.passwd", o.name, nullptr, {{"name", o.name}}); !s)
    return runtime_error(s.error());
  if (o.json) {
    store::User after = **u;
    after.password_hash = *hash;
    print_json_line(user_json(after));
    return kExitOk;
  }
  fmt::print("Changed the password of {}.\n", o.name);
  return kExitOk;
}

int run_audit(const Context& ctx, bool json) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("reading the audit log"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto entries = (*store)->audit();
  if (!entries) return runtime_error(entries.error());
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
}

void add_audit_commands(CLI::App& root, Commands& out) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = root.add_subcommand("audit", "Show the audit log of every change (operators)");
  add_json_flag(*cmd, *json);
  out.push_back({cmd, [json](const Context& ctx) { return run_audit(ctx, *json); }});
}

}  // namespace mxguard::console
