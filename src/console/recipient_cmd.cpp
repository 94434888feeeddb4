// `mxguard recipient ...`: the known addresses of `list`-mode domains, over
// admin/recipients (argument shapes and output here, every check there).
#include <fmt/format.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "console.hpp"
#include "mxguard/admin/recipients.hpp"
#include "onboarding.hpp"
#include "output.hpp"

namespace mxguard::console {

namespace {

struct AddressOptions {
  std::vector<std::string> args;  // DOMAIN ADDRESS... or, the older spelling, ADDRESS...
  bool json = false;
};

struct ListOptions {
  std::vector<std::string> args;  // DOMAIN
  std::string domain;             // --domain D, the older spelling
  bool json = false;
};

struct ImportOptions {
  std::vector<std::string> args;  // DOMAIN FILE, or FILE with --domain D
  std::string domain;
  bool json = false;
};

// The one domain a command acts on: the DOMAIN argument or, as before, --domain.
Result<std::string> domain_argument(const std::vector<std::string>& args, const std::string& option,
                                    std::string_view usage) {
  if (args.size() > 1) return Error{fmt::format("too many arguments (usage: {})", usage)};
  if (!args.empty() && !option.empty())
    return Error{fmt::format("the domain is given twice: {} and --domain {}", args[0], option)};
  if (args.empty() && option.empty()) return Error{fmt::format("the domain is missing (usage: {})", usage)};
  return args.empty() ? option : args[0];
}

// Sorts the words into the domain and the addresses: "DOMAIN alice
// bob@DOMAIN", or the older "alice@d1 bob@d2" where a first word with '@'
// means each address names its own domain.
admin::RecipientInput recipient_input(const std::vector<std::string>& args) {
  admin::RecipientInput in;
  size_t first = 0;
  if (args[0].find('@') == std::string::npos) {
    in.domain = args[0];
    first = 1;
  }
  in.addresses.assign(args.begin() + first, args.end());
  return in;
}

int run_add_remove(const Context& ctx, const AddressOptions& o, bool add) {
  std::string usage = fmt::format("mxguard recipient {} DOMAIN ADDRESS...", add ? "add" : "remove");
  if (o.args.empty()) return usage_error(fmt::format("the domain and the addresses are missing (usage: {})", usage));
  admin::RecipientInput in = recipient_input(o.args);
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto changes = add ? admin::add_recipients(actor(ctx, **store), in) : admin::remove_recipients(actor(ctx, **store), in);
  if (!changes) {
    admin::Failure f = changes.failure();
    if (in.addresses.empty() && f.field == "address") f.message += fmt::format(" (usage: {})", usage);
    return fail(f);
  }
  for (const auto& c : *changes) {
    if (o.json)
      print_json_line({{"address", c.address}, {"domain", c.domain}, {"kind", "mailbox"}, {add ? "added" : "removed", c.changed}});
    else
      fmt::print("{} {}{}\n", add ? "Added" : "Removed", c.address,
                 c.changed ? "" : (add ? " (already present)" : " (was not present)"));
  }
  return kExitOk;
}

int run_list(const Context& ctx, const ListOptions& o) {
  auto typed = domain_argument(o.args, o.domain, "mxguard recipient list DOMAIN");
  if (!typed) return usage_error(typed.error());
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto all = admin::list_recipients(actor(ctx, **store), *typed);
  if (!all) return fail(all.failure());
  for (const auto& r : all->addresses) {
    if (o.json) print_json_line(admin::recipient_json(r, all->domain));
    else fmt::print("{}\n", r);
  }
  if (!o.json) fmt::print("{}\n", count_of(all->addresses.size(), "recipient", "recipients"));
  return kExitOk;
}

// The file is read here; admin::import_recipients checks every line and
// writes all of them or none.
int run_import(const Context& ctx, ImportOptions o) {
  // DOMAIN FILE; the older spelling is FILE --domain DOMAIN.
  constexpr std::string_view kUsage = "mxguard recipient import DOMAIN FILE";
  if (o.args.empty()) return usage_error(fmt::format("the domain and the file are missing (usage: {})", kUsage));
  std::string file = o.args.back();
  o.args.pop_back();
  auto typed = domain_argument(o.args, o.domain, kUsage);
  if (!typed) return usage_error(typed.error());
  std::ifstream in(file);
  if (!in) return usage_error(fmt::format("cannot read {}", file));
  std::stringstream text;
  text << in.rdbuf();
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto imported = admin::import_recipients(actor(ctx, **store), *typed, text.str(), file);
  if (!imported) {
    admin::Failure f = imported.failure();
    if (!f.lines.empty()) f.message = fmt::format("{}: {}", file, f.message);
    return fail(f);
  }
  if (o.json) {
    print_json_line({{"domain", imported->domain}, {"file", file}, {"addresses", imported->addresses}, {"new", imported->added}});
    return kExitOk;
  }
  fmt::print("Imported {} into {} ({} already present).\n", count_of(imported->added, "recipient", "recipients"),
             imported->domain, imported->addresses - imported->added);
  return kExitOk;
}

}  // namespace

void add_recipient_commands(CLI::App& root, Commands& out) {
  CLI::App* group = root.add_subcommand("recipient", "Known recipients of list-mode domains");
  for (bool add : {true, false}) {
    auto o = std::make_shared<AddressOptions>();
    CLI::App* cmd = group->add_subcommand(add ? "add" : "remove", add ? "Add recipient addresses"
                                                                       : "Remove recipient addresses");
    cmd->add_option("ARGS", o->args,
                    "DOMAIN ADDRESS...: the domain, then local parts or local@DOMAIN addresses (the older "
                    "spelling, addresses only, still works)");
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o, add](const Context& ctx) { return run_add_remove(ctx, *o, add); }});
  }
  auto l = std::make_shared<ListOptions>();
  CLI::App* list = group->add_subcommand("list", "List a domain's recipients");
  list->add_option("DOMAIN", l->args, "Domain name");
  list->add_option("--domain", l->domain, "Same as the DOMAIN argument (older spelling)");
  add_json_flag(*list, l->json);
  out.push_back({list, [l](const Context& ctx) { return run_list(ctx, *l); }});
  auto i = std::make_shared<ImportOptions>();
  CLI::App* imp = group->add_subcommand("import", "Import addresses from a file, one per line (all or nothing)");
  imp->add_option("ARGS", i->args, "DOMAIN FILE: the domain, then a file with one address per line");
  imp->add_option("--domain", i->domain, "The domain (older spelling: import FILE --domain DOMAIN)");
  add_json_flag(*imp, i->json);
  out.push_back({imp, [i](const Context& ctx) { return run_import(ctx, *i); }});
}

}  // namespace mxguard::console
