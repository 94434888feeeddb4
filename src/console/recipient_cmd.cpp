// `mxguard recipient ...`: the known addresses of `list`-mode domains.
#include <fmt/format.h>

#include <fstream>
#include <memory>
#include <set>

#include "console.hpp"
#include "mxguard/smtp/address.hpp"
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

// Splits and checks "local@domain" the way RCPT TO would parse it.
Result<std::pair<std::string, std::string>> split_address(std::string_view a) {
  auto r = smtp::parse_rcpt_to(fmt::format("TO:<{}>", a), true);
  if (auto* e = std::get_if<smtp::PathError>(&r)) return Error{fmt::format("'{}': {}", a, e->detail)};
  const smtp::Mailbox& m = std::get<smtp::RcptTo>(r).recipient;
  if (m.domain.empty() || m.domain_is_literal()) return Error{fmt::format("'{}' has no domain name", a)};
  return std::pair{m.local, m.domain};
}

// The domain must be managed here, by this principal.
Status check_domain(const store::ConfigStore& store, const Principal& p, std::string_view domain, int& code) {
  auto d = domain_for(store, p, domain, code);
  if (!d) return Error{d.error()};
  return {};
}

// "DOMAIN alice bob@DOMAIN" or the older "alice@d1 bob@d2": a first word
// without '@' is the domain, and the words after it are local parts or
// addresses in that domain.
Result<std::vector<std::pair<std::string, std::string>>> parse_addresses(const std::vector<std::string>& args,
                                                                         std::string_view usage) {
  std::vector<std::pair<std::string, std::string>> parsed;
  if (args.empty()) return Error{fmt::format("the domain and the addresses are missing (usage: {})", usage)};
  std::string domain;
  size_t first = 0;
  if (args[0].find('@') == std::string::npos) {
    auto name = normalize_domain(args[0]);
    if (!name) return Error{name.error()};
    domain = std::move(*name);
    first = 1;
    if (args.size() == 1) return Error{fmt::format("no address after the domain {} (usage: {})", domain, usage)};
  }
  for (size_t i = first; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool local_only = !domain.empty() && a.find('@') == std::string::npos;
    auto p = split_address(local_only ? a + "@" + domain : a);
    if (!p) return Error{p.error()};
    if (!domain.empty() && p->second != domain) return Error{fmt::format("{} is not in {}", a, domain)};
    parsed.push_back(std::move(*p));
  }
  return parsed;
}

int run_add_remove(const Context& ctx, const AddressOptions& o, bool add) {
  auto addresses = parse_addresses(o.args, fmt::format("mxguard recipient {} DOMAIN ADDRESS...", add ? "add" : "remove"));
  if (!addresses) return usage_error(addresses.error());
  const auto& parsed = *addresses;
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  int code;
  for (const auto& [local, domain] : parsed)
    if (auto s = check_domain(**store, ctx.principal, domain, code); !s) return fail(code, s.error());
  for (const auto& [local, domain] : parsed) {
    auto changed = add ? (*store)->add_recipient(domain, local) : (*store)->remove_recipient(domain, local);
    if (!changed) return runtime_error(changed.error());
    std::string addr = local + "@" + domain;
    if (*changed)
      if (auto s = audit(**store, ctx.principal, add ? "recipient.add" : "recipient.remove", addr,
                         add ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json{{"address", addr}},
                         add ? nlohmann::ordered_json{{"address", addr}} : nlohmann::ordered_json(nullptr));
          !s)
        return runtime_error(s.error());
    if (o.json)
      print_json_line({{"address", addr}, {"domain", domain}, {"kind", "mailbox"}, {add ? "added" : "removed", *changed}});
    else
      fmt::print("{} {}@{}{}\n", add ? "Added" : "Removed", local, domain,
                 *changed ? "" : (add ? " (already present)" : " (was not present)"));
  }
  return kExitOk;
}

int run_list(const Context& ctx, const ListOptions& o) {
  auto typed = domain_argument(o.args, o.domain, "mxguard recipient list DOMAIN");
  if (!typed) return usage_error(typed.error());
  auto name = normalize_domain(*typed);
  if (!name) return usage_error(name.error());
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  int code;
  if (auto s = check_domain(**store, ctx.principal, *name, code); !s) return fail(code, s.error());
  auto all = (*store)->recipients(*name);
  if (!all) return runtime_error(all.error());
  for (const auto& r : *all) {
    if (o.json) print_json_line({{"address", r}, {"domain", *name}, {"kind", "mailbox"}});
    else fmt::print("{}\n", r);
  }
  if (!o.json) fmt::print("{}\n", count_of(all->size(), "recipient", "recipients"));
  return kExitOk;
}

// One address per line; blank lines and '#' comments are skipped. Any bad or
// duplicate line stops the import with its line number, and nothing is written.
int run_import(const Context& ctx, ImportOptions o) {
  // DOMAIN FILE; the older spelling is FILE --domain DOMAIN.
  constexpr std::string_view kUsage = "mxguard recipient import DOMAIN FILE";
  if (o.args.empty()) return usage_error(fmt::format("the domain and the file are missing (usage: {})", kUsage));
  std::string file = o.args.back();
  o.args.pop_back();
  auto typed = domain_argument(o.args, o.domain, kUsage);
  if (!typed) return usage_error(typed.error());
  auto name = normalize_domain(*typed);
  if (!name) return usage_error(name.error());
  std::ifstream in(file);
  if (!in) return usage_error(fmt::format("cannot read {}", file));
  std::vector<std::string> locals;
  std::set<std::string> seen;
  std::vector<std::string> problems;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string_view t = line;
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (t.empty() || t.front() == '#') continue;
    auto p = split_address(t);
    if (!p) problems.push_back(fmt::format("line {}: {}", lineno, p.error()));
    else if (p->second != *name) problems.push_back(fmt::format("line {}: {} is not in {}", lineno, t, *name));
    else if (!seen.insert(p->first).second) problems.push_back(fmt::format("line {}: duplicate {}", lineno, t));
    else locals.push_back(p->first);
  }
  if (!problems.empty())
    return usage_error(fmt::format("{}: nothing imported: {}", file, fmt::join(problems, "; ")));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  int code;
  if (auto s = check_domain(**store, ctx.principal, *name, code); !s) return fail(code, s.error());
  auto added = (*store)->import_recipients(*name, locals);
  if (!added) return runtime_error(added.error());
  if (auto s = audit(**store, ctx.principal, "recipient.import", *name, nullptr,
                     {{"file", file}, {"addresses", locals.size()}, {"new", *added}});
      !s)
    return runtime_error(s.error());
  if (o.json) {
    print_json_line({{"domain", *name}, {"file", file}, {"addresses", locals.size()}, {"new", *added}});
    return kExitOk;
  }
  fmt::print("Imported {} into {} ({} already present).\n", count_of(*added, "recipient", "recipients"), *name,
             locals.size() - *added);
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
