// `mxguard customer ...`: the customer accounts (tenants) that own domains.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>

#include "console.hpp"
#include "onboarding.hpp"
#include "output.hpp"
#include "validate.hpp"

namespace mxguard::console {

namespace {

struct AddOptions {
  std::string name;
  bool json = false;
};

struct RemoveOptions {
  std::string name;
  bool json = false;
};

struct RenameOptions {
  std::string from, to;
  bool json = false;
};

struct ListOptions {
  bool json = false;
};

// Creates an empty customer account; refuses a name already taken.
int run_add(const Context& ctx, const AddOptions& o) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("adding customers"));
  if (auto s = check_customer_name(o.name); !s) return usage_error(s.error());
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  store::Customer c{o.name, now_ms()};
  auto added = (*store)->add_customer(c);
  if (!added) return runtime_error(added.error());
  if (!*added) return usage_error(fmt::format("customer {} already exists", o.name));
  if (auto s = audit(**store, ctx.principal, "customer.add", o.name, nullptr, {{"name", o.name}}); !s)
    return runtime_error(s.error());
  if (o.json) print_json_line({{"name", c.name}, {"domains", 0}, {"created", iso8601(c.created_ms)}});
  else fmt::print("Added customer {}.\n", o.name);
  return kExitOk;
}

// Refuses while the customer still owns domains or users: removing them is a
// decision the operator takes one by one, not a side effect.
int run_remove(const Context& ctx, const RemoveOptions& o) {
  const std::string& name = o.name;
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("removing customers"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto before = (*store)->customer(name);
  if (!before) return runtime_error(before.error());
  auto removed = (*store)->remove_customer(name);
  if (!removed) return runtime_error(removed.error());
  using Change = store::ConfigStore::CustomerChange;
  if (*removed == Change::kNoCustomer) return usage_error(fmt::format("no such customer: {}", name));
  if (*removed == Change::kInUse) {
    auto domains = (*store)->domains();
    auto users = (*store)->users();
    if (!domains || !users) return runtime_error(!domains ? domains.error() : users.error());
    size_t nd = std::count_if(domains->begin(), domains->end(), [&](const store::Domain& d) { return d.customer == name; });
    size_t nu = std::count_if(users->begin(), users->end(), [&](const store::User& u) { return u.customer == name; });
    return fail(kExitTaken, fmt::format("customer {} still has {} and {}; remove them first (domain remove, user remove)",
                                        name, count_of(nd, "domain", "domains"), count_of(nu, "user", "users")));
  }
  nlohmann::ordered_json was = {{"name", name}, {"created", iso8601((*before)->created_ms)}};
  if (auto s = audit(**store, ctx.principal, "customer.remove", name, was, nullptr); !s) return runtime_error(s.error());
  if (o.json) {
    was["removed"] = true;
    print_json_line(was);
    return kExitOk;
  }
  fmt::print("Removed customer {}.\n", name);
  return kExitOk;
}

int run_rename(const Context& ctx, const RenameOptions& o) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("renaming customers"));
  if (auto s = check_customer_name(o.to); !s) return usage_error(s.error());
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto renamed = (*store)->rename_customer(o.from, o.to);
  if (!renamed) return runtime_error(renamed.error());
  using Change = store::ConfigStore::CustomerChange;
  if (*renamed == Change::kNoCustomer) return usage_error(fmt::format("no such customer: {}", o.from));
  if (*renamed == Change::kNameTaken) return fail(kExitTaken, fmt::format("customer {} already exists", o.to));
  if (auto s = audit(**store, ctx.principal, "customer.rename", o.from, {{"name", o.from}}, {{"name", o.to}}); !s)
    return runtime_error(s.error());
  if (o.json) print_json_line({{"name", o.to}, {"renamed_from", o.from}});
  else fmt::print("Renamed customer {} to {}; its domains and users moved with it.\n", o.from, o.to);
  return kExitOk;
}

// Number of domains per customer, for the list.
Result<std::map<std::string, size_t>> domain_counts(const store::ConfigStore& store) {
  auto domains = store.domains();
  if (!domains) return Error{domains.error()};
  std::map<std::string, size_t> counts;
  for (const auto& d : *domains) ++counts[d.customer];
  return counts;
}

void print_customers_json(const std::vector<store::Customer>& customers,
                          const std::map<std::string, size_t>& counts) {
  for (const auto& c : customers) {
    auto n = counts.find(c.name);
    print_json_line({{"name", c.name},
                     {"domains", n == counts.end() ? 0 : n->second},
                     {"created", iso8601(c.created_ms)}});
  }
}

void print_customers_table(const std::vector<store::Customer>& customers,
                           const std::map<std::string, size_t>& counts) {
  Table table({"CUSTOMER", "DOMAINS", "CREATED"});
  for (const auto& c : customers) {
    auto n = counts.find(c.name);
    table.add_row({c.name, std::to_string(n == counts.end() ? 0 : n->second), iso8601(c.created_ms)});
  }
  table.print();
  fmt::print("{}\n", count_of(customers.size(), "customer", "customers"));
}

int run_list(const Context& ctx, const ListOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  if (!is_operator(ctx.principal) && ctx.principal.role != store::Role::kCustomerAdmin)
    return fail(kExitNotPermitted, not_permitted("listing customers"));
  auto customers = (*store)->customers();
  if (!customers) return runtime_error(customers.error());
  std::erase_if(*customers, [&](const store::Customer& c) { return !may_manage_customer(ctx.principal, c.name); });
  auto counts = domain_counts(**store);
  if (!counts) return runtime_error(counts.error());
  if (o.json) print_customers_json(*customers, *counts);
  else print_customers_table(*customers, *counts);
  return kExitOk;
}

}  // namespace

void add_customer_commands(CLI::App& root, Commands& out) {
  CLI::App* group = root.add_subcommand("customer", "Manage customer accounts");

  auto add = std::make_shared<AddOptions>();
  CLI::App* add_cmd = group->add_subcommand("add", "Add a customer account");
  add_cmd->add_option("NAME", add->name, "Customer name: 1 to 64 of A-Z a-z 0-9 . _ -")->required();
  add_json_flag(*add_cmd, add->json);
  out.push_back({add_cmd, [add](const Context& ctx) { return run_add(ctx, *add); }});

  auto remove = std::make_shared<RemoveOptions>();
  CLI::App* remove_cmd = group->add_subcommand("remove", "Remove a customer that has no domains or users left");
  remove_cmd->add_option("NAME", remove->name, "Customer name")->required();
  add_json_flag(*remove_cmd, remove->json);
  out.push_back({remove_cmd, [remove](const Context& ctx) { return run_remove(ctx, *remove); }});

  auto rename = std::make_shared<RenameOptions>();
  CLI::App* rename_cmd = group->add_subcommand("rename", "Rename a customer; its domains and users follow");
  rename_cmd->add_option("OLD", rename->from, "Current name")->required();
  rename_cmd->add_option("NEW", rename->to, "New name: 1 to 64 of A-Z a-z 0-9 . _ -")->required();
  add_json_flag(*rename_cmd, rename->json);
  out.push_back({rename_cmd, [rename](const Context& ctx) { return run_rename(ctx, *rename); }});

  auto list = std::make_shared<ListOptions>();
  CLI::App* list_cmd = group->add_subcommand("list", "List customer accounts");
  add_json_flag(*list_cmd, list->json);
  out.push_back({list_cmd, [list](const Context& ctx) { return run_list(ctx, *list); }});
}

}  // namespace mxguard::console
