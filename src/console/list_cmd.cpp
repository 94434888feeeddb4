// `mxguard list allow|block add|remove|show`: global and per-domain allow and
// block lists of sender addresses, sender domains (with subdomains) and client
// IPs/CIDR blocks. The engine reads them at the next connection or command.
#include <fmt/format.h>

#include <memory>

#include "console.hpp"
#include "onboarding.hpp"
#include "output.hpp"

namespace mxguard::console {

namespace {

struct EntryOptions {
  std::string kind;
  std::string value;
  std::string domain;  // empty: the global list
  bool json = false;
};

// Validates the options into an entry; the error is ready for the user.
Result<store::ListEntry> entry_from(const EntryOptions& o, store::ListAction action,
                                    const store::ConfigStore& store, const Principal& p, int& code) {
  code = kExitUsage;
  store::ListEntry e;
  e.action = action;
  auto kind = store::list_kind_from_string(o.kind);
  if (!kind) return Error{fmt::format("unknown kind '{}' (sender, sender-domain or ip)", o.kind)};
  e.kind = *kind;
  auto value = store::canonical_list_value(e.kind, o.value);
  if (!value) return Error{value.error()};
  e.value = *value;
  if (!o.domain.empty()) {
    auto name = normalize_domain(o.domain);
    if (!name) return Error{name.error()};
    auto d = domain_for(store, p, *name, code);
    if (!d) return Error{d.error()};
    e.scope = *name;
  } else if (!is_operator(p)) {
    code = kExitNotPermitted;
    return Error{not_permitted("the global lists are for operators")};
  }
  e.added_ms = now_ms();
  return e;
}

int run_change(const Context& ctx, const EntryOptions& o, store::ListAction action, bool add) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  int code;
  auto e = entry_from(o, action, **store, ctx.principal, code);
  if (!e) return fail(code, e.error());
  auto changed = add ? (*store)->add_list_entry(*e) : (*store)->remove_list_entry(*e);
  if (!changed) return runtime_error(changed.error());
  std::string where = e->scope.empty() ? "global" : e->scope;
  nlohmann::ordered_json entry{{"list", store::to_string(action)}, {"scope", where}, {"kind", o.kind},
                               {"value", e->value}};
  if (*changed)
    if (auto s = audit(**store, ctx.principal, add ? "list.add" : "list.remove", where,
                       add ? nlohmann::ordered_json(nullptr) : entry, add ? entry : nlohmann::ordered_json(nullptr));
        !s)
      return runtime_error(s.error());
  if (!*changed && !add) return usage_error(fmt::format("{} {} is not on the {} {} list", o.kind, e->value, where,
                                                        store::to_string(action)));
  fmt::print("{} {} {} {} the {} {} list.\n", add ? (*changed ? "Added" : "Already had") : "Removed", o.kind, e->value,
             add ? "to" : "from", where, store::to_string(action));
  return kExitOk;
}

int run_show(const Context& ctx, const EntryOptions& o, store::ListAction action) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  std::string scope;
  if (!o.domain.empty()) {
    auto name = normalize_domain(o.domain);
    if (!name) return usage_error(name.error());
    int code;
    if (auto d = domain_for(**store, ctx.principal, *name, code); !d) return fail(code, d.error());
    scope = *name;
  } else if (!is_operator(ctx.principal)) {
    return fail(kExitNotPermitted, not_permitted("the global lists are for operators"));
  }
  auto entries = (*store)->list_entries(scope, false);
  if (!entries) return runtime_error(entries.error());
  Table t({"KIND", "VALUE", "ADDED"});
  for (const auto& e : *entries) {
    if (e.action != action) continue;
    if (o.json)
      print_json_line({{"list", store::to_string(action)},
                       {"scope", e.scope.empty() ? "global" : e.scope},
                       {"kind", store::to_string(e.kind)},
                       {"value", e.value},
                       {"added", iso8601(e.added_ms)}});
    else
      t.add_row({std::string(store::to_string(e.kind)), e.value, iso8601(e.added_ms)});
  }
  if (!o.json) {
    t.print();
    fmt::print("{} on the {} {} list\n", count_of(t.rows(), "entry", "entries"), scope.empty() ? "global" : scope,
               store::to_string(action));
  }
  return kExitOk;
}

}  // namespace

void add_list_commands(CLI::App& root, Commands& out) {
  CLI::App* group = root.add_subcommand("list", "Allow and block lists (global or per domain)");
  for (store::ListAction action : {store::ListAction::kAllow, store::ListAction::kBlock}) {
    std::string name(store::to_string(action));
    CLI::App* sub = group->add_subcommand(name, fmt::format("The {} list", name));
    for (bool add : {true, false}) {
      auto o = std::make_shared<EntryOptions>();
      CLI::App* cmd = sub->add_subcommand(add ? "add" : "remove", add ? "Add an entry" : "Remove an entry");
      cmd->add_option("KIND", o->kind, "sender, sender-domain or ip")->required();
      cmd->add_option("VALUE", o->value, "an address, a domain (covers its subdomains) or an IP/CIDR")->required();
      cmd->add_option("--domain", o->domain, "Only for this domain (default: the global list)");
      out.push_back({cmd, [o, action, add](const Context& ctx) { return run_change(ctx, *o, action, add); }});
    }
    auto o = std::make_shared<EntryOptions>();
    CLI::App* show = sub->add_subcommand("show", "Show the entries");
    show->add_option("--domain", o->domain, "This domain's list (default: the global list)");
    add_json_flag(*show, o->json);
    out.push_back({show, [o, action](const Context& ctx) { return run_show(ctx, *o, action); }});
  }
}

}  // namespace mxguard::console
