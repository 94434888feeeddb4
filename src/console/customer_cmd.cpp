// `mxguard customer ...`: the customer accounts (tenants) that own domains.
#include <fmt/format.h>

#include <map>
#include <memory>

#include "console.hpp"
#include "output.hpp"
#include "validate.hpp"

namespace mxguard::console {

namespace {

struct AddOptions {
  std::string name;
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
  auto added = (*store)->add_customer(store::Customer{o.name, now_ms()});
  if (!added) return runtime_error(added.error());
  if (!*added) return usage_error(fmt::format("customer {} already exists", o.name));
  if (auto s = audit(**store, ctx.principal, "customer.add", o.name, nullptr, {{"name", o.name}}); !s)
    return runtime_error(s.error());
  fmt::print("Added customer {}.\n", o.name);
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
  out.push_back({add_cmd, [add](const Context& ctx) { return run_add(ctx, *add); }});

  auto list = std::make_shared<ListOptions>();
  CLI::App* list_cmd = group->add_subcommand("list", "List customer accounts");
  add_json_flag(*list_cmd, list->json);
  out.push_back({list_cmd, [list](const Context& ctx) { return run_list(ctx, *list); }});
}

}  // namespace mxguard::console
