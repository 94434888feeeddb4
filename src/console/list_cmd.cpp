// `mxguard list allow|block add|remove|show`: global and per-domain allow and
// block lists of sender addresses (or *@domain), sender domains (with their
// subdomains, or *.domain for the subdomains only) and client IPs/CIDR
// blocks. The engine reads them at the next connection or command. The
// checks are admin/lists'; this file sorts the words and prints.
#include <fmt/format.h>

#include <memory>

#include "console.hpp"
#include "mxguard/admin/lists.hpp"
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

using admin::kListKinds;

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
  if (a.size() <= k) return Error{fmt::format("the kind and the value are missing (usage: {}; {})", usage, kListKinds)};
  if (!is_kind(a[k]))
    return Error{fmt::format("'{}' is not a kind, or the kind is missing (usage: {}; {})", a[k], usage, kListKinds)};
  if (a.size() == k + 1) return Error{fmt::format("the value is missing (usage: {})", usage)};
  o.kind = a[k];
  o.value = a[k + 1];
  return {};
}

admin::ListEntryInput entry_input(const EntryOptions& o, store::ListAction action) {
  return {std::string(store::to_string(action)), o.domain, o.kind, o.value};
}

int run_change(const Context& ctx, EntryOptions o, store::ListAction action, bool add) {
  std::string usage = fmt::format("mxguard list {} {} [DOMAIN] KIND VALUE", store::to_string(action),
                                  add ? "add" : "remove");
  if (auto s = split_entry_args(o, usage); !s) return usage_error(s.error());
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto a = actor(ctx, **store);
  auto c = add ? admin::add_list_entry(a, entry_input(o, action)) : admin::remove_list_entry(a, entry_input(o, action));
  if (!c) return fail(c.failure());
  const store::ListEntry& e = c->entry;
  if (o.json) {
    nlohmann::ordered_json j = admin::list_entry_json(e);
    if (!add) j.erase("added");
    j[add ? "added_now" : "removed"] = c->changed;
    print_json_line(j);
    return kExitOk;
  }
  fmt::print("{} {} {} {} the {} {} list.\n", add ? (c->changed ? "Added" : "Already had") : "Removed",
             store::to_string(e.kind), e.value, add ? "to" : "from", e.scope.empty() ? "global" : e.scope,
             store::to_string(action));
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
  auto shown = admin::show_list(actor(ctx, **store), store::to_string(action), o.domain);
  if (!shown) return fail(shown.failure());
  Table t({"KIND", "VALUE", "ADDED"});
  for (const auto& e : shown->entries) {
    if (o.json)
      print_json_line(admin::list_entry_json(e));
    else
      t.add_row({std::string(store::to_string(e.kind)), e.value, iso8601(e.added_ms)});
  }
  if (!o.json) {
    t.print();
    fmt::print("{} on the {} {} list\n", count_of(t.rows(), "entry", "entries"),
               shown->scope.empty() ? "global" : shown->scope, store::to_string(action));
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
