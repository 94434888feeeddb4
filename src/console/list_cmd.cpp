// `mxguard list allow|block add|remove|show`: global and per-domain allow and
// block lists of sender addresses (or *@domain), sender domains (with their
// subdomains, or *.domain for the subdomains only) and client IPs/CIDR
// blocks. The engine reads them at the next connection or command.
#include <fmt/format.h>

#include <memory>

#include "console.hpp"
#include "onboarding.hpp"
#include "output.hpp"

namespace mxguard::console {

namespace {

struct EntryOptions {
  std::vector<std::string> args;  // [DOMAIN] KIND VALUE as typed (show: [DOMAIN])
  std::string kind;
  std::string value;
  std::string domain;  // empty: the global list; also the old spelling --domain D
  bool json = false;
};

constexpr std::string_view kKinds =
    "KIND is sender (an address, or *@domain), sender-domain (a domain and its subdomains, or *.domain for "
    "the subdomains only) or ip (an address or CIDR block)";

// Sorts the positional words into domain, kind and value. The domain comes
// first when given, so "list block add example.com sender x@y" reads like
// every other command on one domain; --domain D still works.
Status split_entry_args(EntryOptions& o, std::string_view usage) {
  auto is_kind = [](std::string_view w) { return store::list_kind_from_string(w).has_value(); };
  const auto& a = o.args;
  if (a.size() > 3) return Error{fmt::format("too many arguments (usage: {})", usage)};
  if (a.size() == 3) {
    if (!o.domain.empty()) return Error{fmt::format("the domain is given twice: {} and --domain {}", a[0], o.domain)};
    o.domain = a[0];
  }
  size_t k = a.size() == 3 ? 1 : 0;
  if (a.size() <= k) return Error{fmt::format("the kind and the value are missing (usage: {}; {})", usage, kKinds)};
  if (!is_kind(a[k]))
    return Error{fmt::format("'{}' is not a kind, or the kind is missing (usage: {}; {})", a[k], usage, kKinds)};
  if (a.size() == k + 1) return Error{fmt::format("the value is missing (usage: {})", usage)};
  o.kind = a[k];
  o.value = a[k + 1];
  return {};
}

// Validates the options into an entry; the error is ready for the user.
Result<store::ListEntry> entry_from(const EntryOptions& o, store::ListAction action,
                                    const store::ConfigStore& store, const Principal& p, int& code) {
  code = kExitUsage;
  store::ListEntry e;
  e.action = action;
  auto kind = store::list_kind_from_string(o.kind);
  if (!kind) return Error{fmt::format("unknown kind '{}' ({})", o.kind, kKinds)};
  auto target = store::canonical_list_entry(*kind, o.value);
  if (!target) return Error{target.error()};
  e.kind = target->kind;
  e.value = std::move(target->value);
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

nlohmann::ordered_json entry_json(const store::ListEntry& e) {
  return {{"list", store::to_string(e.action)},
          {"scope", e.scope.empty() ? "global" : e.scope},
          {"kind", store::to_string(e.kind)},
          {"value", e.value},
          {"added", iso8601(e.added_ms)}};
}

int run_change(const Context& ctx, EntryOptions o, store::ListAction action, bool add) {
  std::string usage = fmt::format("mxguard list {} {} [DOMAIN] KIND VALUE", store::to_string(action),
                                  add ? "add" : "remove");
  if (auto s = split_entry_args(o, usage); !s) return usage_error(s.error());
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  int code;
  auto e = entry_from(o, action, **store, ctx.principal, code);
  if (!e) return fail(code, e.error());
  auto changed = add ? (*store)->add_list_entry(*e) : (*store)->remove_list_entry(*e);
  if (!changed) return runtime_error(changed.error());
  std::string where = e->scope.empty() ? "global" : e->scope;
  std::string_view kind = store::to_string(e->kind);
  nlohmann::ordered_json entry{{"list", store::to_string(action)}, {"scope", where}, {"kind", kind},
                               {"value", e->value}};
  if (*changed)
    if (auto s = audit(**store, ctx.principal, add ? "list.add" : "list.remove", where,
                       add ? nlohmann::ordered_json(nullptr) : entry, add ? entry : nlohmann::ordered_json(nullptr));
        !s)
      return runtime_error(s.error());
  if (!*changed && !add) return usage_error(fmt::format("{} {} is not on the {} {} list", kind, e->value, where,
                                                        store::to_string(action)));
  if (o.json) {
    nlohmann::ordered_json j = entry_json(*e);
    if (!add) j.erase("added");
    j[add ? "added_now" : "removed"] = *changed;
    print_json_line(j);
    return kExitOk;
  }
  fmt::print("{} {} {} {} the {} {} list.\n", add ? (*changed ? "Added" : "Already had") : "Removed", kind, e->value,
             add ? "to" : "from", where, store::to_string(action));
  return kExitOk;
}

int run_show(const Context& ctx, EntryOptions o, store::ListAction action) {
  if (o.args.size() > 1) return usage_error(fmt::format("too many arguments (usage: mxguard list {} show [DOMAIN])",
                                                        store::to_string(action)));
  if (!o.args.empty()) {
    if (!o.domain.empty())
      return usage_error(fmt::format("the domain is given twice: {} and --domain {}", o.args[0], o.domain));
    o.domain = o.args[0];
  }
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
      print_json_line(entry_json(e));
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
      cmd->add_option("ARGS", o->args,
                      "[DOMAIN] KIND VALUE: DOMAIN for that domain's list (default: the global list); KIND is "
                      "sender (an address, or *@domain), sender-domain (a domain and its subdomains, or *.domain "
                      "for the subdomains only) or ip (an address or CIDR block)");
      cmd->add_option("--domain", o->domain, "Same as the DOMAIN argument (older spelling)");
      add_json_flag(*cmd, o->json);
      out.push_back({cmd, [o, action, add](const Context& ctx) { return run_change(ctx, *o, action, add); }});
    }
    auto o = std::make_shared<EntryOptions>();
    CLI::App* show = sub->add_subcommand("show", "Show the entries");
    show->add_option("DOMAIN", o->args, "This domain's list (default: the global list)");
    show->add_option("--domain", o->domain, "Same as the DOMAIN argument (older spelling)");
    add_json_flag(*show, o->json);
    out.push_back({show, [o, action](const Context& ctx) { return run_show(ctx, *o, action); }});
  }
}

}  // namespace mxguard::console
