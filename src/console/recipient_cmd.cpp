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
  std::vector<std::string> addresses;
};

struct ListOptions {
  std::string domain;
  bool json = false;
};

struct ImportOptions {
  std::string file;
  std::string domain;
};

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

int run_add_remove(const Context& ctx, const AddressOptions& o, bool add) {
  std::vector<std::pair<std::string, std::string>> parsed;
  for (const auto& a : o.addresses) {
    auto p = split_address(a);
    if (!p) return usage_error(p.error());
    parsed.push_back(*p);
  }
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
    fmt::print("{} {}@{}{}\n", add ? "Added" : "Removed", local, domain,
               *changed ? "" : (add ? " (already present)" : " (was not present)"));
  }
  return kExitOk;
}

int run_list(const Context& ctx, const ListOptions& o) {
  auto name = normalize_domain(o.domain);
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
int run_import(const Context& ctx, const ImportOptions& o) {
  auto name = normalize_domain(o.domain);
  if (!name) return usage_error(name.error());
  std::ifstream in(o.file);
  if (!in) return usage_error(fmt::format("cannot read {}", o.file));
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
    return usage_error(fmt::format("{}: nothing imported: {}", o.file, fmt::join(problems, "; ")));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  int code;
  if (auto s = check_domain(**store, ctx.principal, *name, code); !s) return fail(code, s.error());
  auto added = (*store)->import_recipients(*name, locals);
  if (!added) return runtime_error(added.error());
  if (auto s = audit(**store, ctx.principal, "recipient.import", *name, nullptr,
                     {{"file", o.file}, {"addresses", locals.size()}, {"new", *added}});
      !s)
    return runtime_error(s.error());
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
    cmd->add_option("ADDRESS", o->addresses, "local@domain (the domain must be managed here)")->required();
    out.push_back({cmd, [o, add](const Context& ctx) { return run_add_remove(ctx, *o, add); }});
  }
  auto l = std::make_shared<ListOptions>();
  CLI::App* list = group->add_subcommand("list", "List a domain's recipients");
  list->add_option("--domain", l->domain, "Domain name")->required();
  add_json_flag(*list, l->json);
  out.push_back({list, [l](const Context& ctx) { return run_list(ctx, *l); }});
  auto i = std::make_shared<ImportOptions>();
  CLI::App* imp = group->add_subcommand("import", "Import addresses from a file, one per line (all or nothing)");
  imp->add_option("FILE", i->file, "File with one address per line")->required();
  imp->add_option("--domain", i->domain, "Domain the addresses belong to")->required();
  out.push_back({imp, [i](const Context& ctx) { return run_import(ctx, *i); }});
}

}  // namespace mxguard::console
