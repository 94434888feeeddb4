// `mxguard customer ...`: the customer accounts (tenants) that own domains.
#include <fmt/format.h>

#include <memory>

#include "console.hpp"
#include "mxguard/admin/customers.hpp"
#include "output.hpp"

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
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto c = admin::add_customer(actor(ctx, **store), o.name);
  if (!c) return fail(c.failure());
  if (o.json) print_json_line(admin::customer_json({*c, 0}));
  else fmt::print("Added customer {}.\n", o.name);
  return kExitOk;
}

int run_remove(const Context& ctx, const RemoveOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto was = admin::remove_customer(actor(ctx, **store), o.name);
  if (!was) return fail(was.failure());
  if (o.json) {
    print_json_line({{"name", was->name}, {"created", iso8601(was->created_ms)}, {"removed", true}});
    return kExitOk;
  }
  fmt::print("Removed customer {}.\n", o.name);
  return kExitOk;
}

int run_rename(const Context& ctx, const RenameOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  if (auto r = admin::rename_customer(actor(ctx, **store), o.from, o.to); !r) return fail(r.failure());
  if (o.json) print_json_line({{"name", o.to}, {"renamed_from", o.from}});
  else fmt::print("Renamed customer {} to {}; its domains and users moved with it.\n", o.from, o.to);
  return kExitOk;
}

int run_list(const Context& ctx, const ListOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto customers = admin::list_customers(actor(ctx, **store));
  if (!customers) return fail(customers.failure());
  if (o.json) {
    for (const auto& c : *customers) print_json_line(admin::customer_json(c));
    return kExitOk;
  }
  Table table({"CUSTOMER", "DOMAINS", "CREATED"});
  for (const auto& c : *customers)
    table.add_row({c.customer.name, std::to_string(c.domains), iso8601(c.customer.created_ms)});
  table.print();
  fmt::print("{}\n", count_of(customers->size(), "customer", "customers"));
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
