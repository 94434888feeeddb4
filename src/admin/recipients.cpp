// Recipient operations: addresses are checked the way RCPT TO parses them,
// every one before the first write, and each change gets its audit entry.
#include "mxguard/admin/recipients.hpp"

#include <fmt/format.h>

#include <set>
#include <utility>

#include "mxguard/admin/onboarding.hpp"
#include "mxguard/smtp/address.hpp"

namespace mxguard::admin {

namespace {

// Splits and checks "local@domain" the way RCPT TO would parse it.
Result<std::pair<std::string, std::string>> split_address(std::string_view a) {
  auto r = smtp::parse_rcpt_to(fmt::format("TO:<{}>", a), true);
  if (auto* e = std::get_if<smtp::PathError>(&r)) return Error{fmt::format("'{}': {}", a, e->detail)};
  const smtp::Mailbox& m = std::get<smtp::RcptTo>(r).recipient;
  if (m.domain.empty() || m.domain_is_literal()) return Error{fmt::format("'{}' has no domain name", a)};
  return std::pair{m.local, m.domain};
}

Outcome<std::string> domain_name(std::string_view typed) {
  auto name = normalize_domain(typed);
  if (!name) return usage(name.error(), "domain");
  return std::move(*name);
}

using Parsed = std::vector<std::pair<std::string, std::string>>;  // local, domain

// The domain is looked up and the principal's right to it checked before the
// addresses are: a role that may not touch the domain learns nothing about
// its input. Without a domain, each address's domain is checked once parsed.
Outcome<Parsed> parse_input(const Actor& a, const RecipientInput& in) {
  std::string domain;
  if (!in.domain.empty()) {
    auto name = domain_name(in.domain);
    if (!name) return name.failure();
    if (auto d = managed_domain(a.store, a.principal, *name); !d) return d.failure();
    domain = std::move(*name);
  }
  if (in.addresses.empty())
    return usage(domain.empty() ? "no address given" : fmt::format("no address after the domain {}", domain),
                 "address");
  Parsed parsed;
  for (const std::string& addr : in.addresses) {
    bool local_only = !domain.empty() && addr.find('@') == std::string::npos;
    auto p = split_address(local_only ? addr + "@" + domain : addr);
    if (!p) return usage(p.error(), "address");
    if (!domain.empty() && p->second != domain) return usage(fmt::format("{} is not in {}", addr, domain), "address");
    parsed.push_back(std::move(*p));
  }
  if (domain.empty())
    for (const auto& [local, d] : parsed)
      if (auto m = managed_domain(a.store, a.principal, d); !m) return m.failure();
  return parsed;
}

Outcome<std::vector<RecipientChange>> change(const Actor& a, const RecipientInput& in, bool add) {
  auto parsed = parse_input(a, in);
  if (!parsed) return parsed.failure();
  std::vector<RecipientChange> out;
  for (const auto& [local, domain] : *parsed) {
    auto changed = add ? a.store.add_recipient(domain, local) : a.store.remove_recipient(domain, local);
    if (!changed) return unavailable(changed.error());
    std::string addr = local + "@" + domain;
    nlohmann::ordered_json entry{{"address", addr}};
    if (*changed)
      if (auto s = audit(a.store, a.principal, add ? "recipient.add" : "recipient.remove", addr,
                         add ? nlohmann::ordered_json(nullptr) : entry, add ? entry : nlohmann::ordered_json(nullptr));
          !s)
        return unavailable(s.error());
    out.push_back({std::move(addr), domain, *changed});
  }
  return out;
}

std::string_view trimmed(std::string_view t) {
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\r')) t.remove_suffix(1);
  return t;
}

}  // namespace

Outcome<RecipientList> list_recipients(const Actor& a, std::string_view typed) {
  auto name = domain_name(typed);
  if (!name) return name.failure();
  if (auto d = managed_domain(a.store, a.principal, *name); !d) return d.failure();
  auto all = a.store.recipients(*name);
  if (!all) return unavailable(all.error());
  return RecipientList{std::move(*name), std::move(*all)};
}

Outcome<std::vector<RecipientChange>> add_recipients(const Actor& a, const RecipientInput& in) {
  return change(a, in, true);
}

Outcome<std::vector<RecipientChange>> remove_recipients(const Actor& a, const RecipientInput& in) {
  return change(a, in, false);
}

Outcome<RecipientImport> import_recipients(const Actor& a, std::string_view typed, std::string_view text,
                                           std::string_view source) {
  auto name = domain_name(typed);
  if (!name) return name.failure();
  if (auto d = managed_domain(a.store, a.principal, *name); !d) return d.failure();
  std::vector<std::string> locals;
  std::set<std::string> seen;
  std::vector<LineProblem> problems;
  int lineno = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++lineno;
    std::string_view t = trimmed(line);
    if (t.empty() || t.front() == '#') continue;
    auto p = split_address(t);
    if (!p) problems.push_back({lineno, p.error()});
    else if (p->second != *name) problems.push_back({lineno, fmt::format("{} is not in {}", t, *name)});
    else if (!seen.insert(p->first).second) problems.push_back({lineno, fmt::format("duplicate {}", t)});
    else locals.push_back(p->first);
  }
  if (!problems.empty()) {
    std::vector<std::string> parts;
    for (const auto& p : problems) parts.push_back(fmt::format("line {}: {}", p.line, p.problem));
    Failure f = usage(fmt::format("nothing imported: {}", fmt::join(parts, "; ")), "text");
    f.lines = std::move(problems);
    return f;
  }
  auto added = a.store.import_recipients(*name, locals);
  if (!added) return unavailable(added.error());
  if (auto s = audit(a.store, a.principal, "recipient.import", *name, nullptr,
                     {{"file", source}, {"addresses", locals.size()}, {"new", *added}});
      !s)
    return unavailable(s.error());
  return RecipientImport{std::move(*name), std::string(source), locals.size(), *added};
}

nlohmann::ordered_json recipient_json(std::string_view address, std::string_view domain) {
  return {{"address", address}, {"domain", domain}, {"kind", "mailbox"}};
}

}  // namespace mxguard::admin
