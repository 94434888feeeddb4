// MX set assessment: who receives the domain's mail first, and every way
// mail could miss the filter or fail to arrive; the lookups behind it.
#include "mxguard/admin/mx_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "mxguard/admin/dns_report.hpp"
#include "mxguard/admin/validate.hpp"
#include "mxguard/core/net.hpp"
#include "mxguard/core/strings.hpp"

namespace mxguard::admin {

namespace {

using dns::LookupStatus;

std::string label(const MxTarget& t) {
  return fmt::format("MX {} {}", t.preference, t.host.empty() ? "." : t.host);
}

// The lowest preference among the targets that pass `pick`: senders try it first.
template <typename Pick>
std::optional<uint16_t> best_preference(const std::vector<MxTarget>& targets, Pick pick) {
  std::optional<uint16_t> best;
  for (const auto& t : targets)
    if (pick(t) && (!best || t.preference < *best)) best = t.preference;
  return best;
}

MxRole role_of(const MxReport& r) {
  if (r.lookup == LookupStatus::kNoData || r.lookup == LookupStatus::kNxDomain) return MxRole::kNotInMx;
  if (r.lookup != LookupStatus::kOk) return MxRole::kUnknown;
  auto ours = best_preference(r.targets, [](const MxTarget& t) { return t.ours; });
  if (!ours) return MxRole::kNotInMx;
  auto all = best_preference(r.targets, [](const MxTarget&) { return true; });
  return *ours <= *all ? MxRole::kPrimary : MxRole::kBackup;
}

// Without a usable MX set there is nothing per target to say.
std::string lookup_warning(const MxReport& r) {
  switch (r.lookup) {
    case LookupStatus::kNoData:
      return fmt::format("BYPASS: {} has no MX records: senders deliver to its own A/AAAA address "
                         "(RFC 5321 5.1), not to MxGuard",
                         r.domain);
    case LookupStatus::kNxDomain: return fmt::format("{} does not exist in DNS (NXDOMAIN)", r.domain);
    default: return fmt::format("the MX lookup of {} {}", r.domain, r.lookup_failure);
  }
}

// The loud ones: a foreign MX that senders use before, or as often as, ours.
void bypass_warnings(const MxReport& r, std::vector<std::string>& out) {
  auto ours = best_preference(r.targets, [](const MxTarget& t) { return t.ours; });
  if (!ours) {
    out.push_back(fmt::format("BYPASS: no MX record of {} points at MxGuard: all its mail bypasses the filter",
                              r.domain));
    return;
  }
  for (const auto& t : r.targets) {
    if (t.ours || t.host.empty()) continue;
    if (t.preference < *ours)
      out.push_back(fmt::format("BYPASS: {} is preferred over MxGuard's best MX (preference {}): "
                                "senders deliver there first and mail bypasses the filter",
                                label(t), *ours));
    else if (t.preference == *ours)
      out.push_back(fmt::format("BYPASS: {} has the same preference as MxGuard's best MX: senders pick "
                                "either, so part of the mail bypasses the filter",
                                label(t)));
  }
}

std::string address_warning(const MxTarget& t) {
  switch (t.address_status) {
    case LookupStatus::kNoData: return fmt::format("{} has no A or AAAA record: mail cannot be delivered to it", label(t));
    case LookupStatus::kNxDomain: return fmt::format("{}: the host does not exist in DNS (NXDOMAIN)", label(t));
    default: return fmt::format("{}: the address lookup {}", label(t), t.address_failure);
  }
}

// One line per problem of one target, in a fixed order.
void target_warnings(const MxReport& r, const MxTarget& t, std::optional<uint16_t> our_best,
                     const std::vector<std::string>& our_hosts, std::vector<std::string>& out) {
  if (t.host.empty()) {
    out.push_back(fmt::format("{} is a null MX (RFC 7505): {} says it accepts no mail", label(t), r.domain));
    return;
  }
  if (t.ip_literal) {
    out.push_back(fmt::format("{} is an IP address: MX targets must be host names (RFC 5321 5.1)", label(t)));
    return;
  }
  // A foreign MX already named in a BYPASS warning gets no second line.
  bool bypass = our_best && t.preference <= *our_best;
  if (!t.ours && !bypass)
    out.push_back(fmt::format("{} is not one of this installation's MX hosts ({}): mail it receives is not filtered",
                              label(t), our_hosts.empty() ? "none configured" : fmt::format("{}", fmt::join(our_hosts, ", "))));
  if (!t.alias.empty())
    out.push_back(fmt::format("{} is an alias (CNAME to {}): MX targets must not be aliases (RFC 2181 10.3)",
                              label(t), t.alias));
  if (t.address_status != LookupStatus::kOk) out.push_back(address_warning(t));
}

bool target_ok(const MxTarget& t) {
  return t.ours && !t.ip_literal && !t.host.empty() && t.address_status == LookupStatus::kOk;
}

// Fills in a target's addresses. IP literals and the null MX are not looked
// up: a name like "192.0.2.1" lives under a numeric TLD no server is
// authoritative for, so asking would only cost a timeout.
MxTarget lookup_target(const Config& cfg, dns::Resolver& resolver, const dns::MxRecord& mx) {
  MxTarget t;
  t.preference = mx.preference;
  t.host = mx.host;
  t.ours = !mx.is_null() && is_our_host(mx.host, cfg.onboarding.mx_hosts);
  t.ip_literal = IpAddress::parse(mx.host).has_value();
  if (mx.is_null() || t.ip_literal) return t;
  auto a = resolver.addresses(mx.host);
  t.address_status = a.status;
  t.address_failure = lookup_failure(cfg, a.status, a.error);
  t.alias = a.canonical_name;
  for (const auto& ip : a.records) t.addresses.push_back(ip.to_string());
  return t;
}

}  // namespace

std::string_view to_string(MxRole role) {
  switch (role) {
    case MxRole::kPrimary: return "primary";
    case MxRole::kBackup: return "backup";
    case MxRole::kNotInMx: return "not_in_mx";
    case MxRole::kUnknown: return "unknown";
  }
  return "unknown";
}

std::string role_description(MxRole role, std::string_view backend) {
  switch (role) {
    case MxRole::kPrimary:
      return fmt::format("primary MX (MxGuard has the lowest preference): it filters the domain's mail and "
                         "delivers it to the configured backend {}",
                         backend);
    case MxRole::kBackup:
      // A backup MX here is not a store-and-forward relay for the primary:
      // what reaches MxGuard is filtered and delivered like any other mail.
      return fmt::format("backup MX (another host is preferred, so senders try it first): mail that reaches "
                         "MxGuard is filtered and delivered to the configured backend {}",
                         backend);
    case MxRole::kNotInMx: return "not in the MX set (mail for the domain does not reach MxGuard)";
    case MxRole::kUnknown: return "unknown (the MX records could not be read)";
  }
  return "unknown";
}

bool is_our_host(std::string_view host, const std::vector<std::string>& our_hosts) {
  std::string_view h = host;
  if (!h.empty() && h.back() == '.') h.remove_suffix(1);
  return std::any_of(our_hosts.begin(), our_hosts.end(), [h](const std::string& ours) {
    std::string_view o = ours;
    if (!o.empty() && o.back() == '.') o.remove_suffix(1);
    return iequals(h, o);
  });
}

void assess(MxReport& r, const std::vector<std::string>& our_hosts) {
  std::sort(r.targets.begin(), r.targets.end(), [](const MxTarget& a, const MxTarget& b) {
    return a.preference != b.preference ? a.preference < b.preference : a.host < b.host;
  });
  r.role = role_of(r);
  r.warnings.clear();
  if (r.lookup != LookupStatus::kOk) {
    r.warnings.push_back(lookup_warning(r));
    r.ok = false;
    return;
  }
  if (our_hosts.empty())
    r.warnings.push_back("no MX hosts are configured (onboarding.mx_hosts): no MX record can be recognised as MxGuard's");
  bypass_warnings(r, r.warnings);
  auto our_best = best_preference(r.targets, [](const MxTarget& t) { return t.ours; });
  for (const auto& t : r.targets) target_warnings(r, t, our_best, our_hosts, r.warnings);
  r.ok = !r.targets.empty() && std::all_of(r.targets.begin(), r.targets.end(), target_ok);
}

Outcome<MxCheck> check_mx(const Actor& a, std::string_view typed) {
  auto d = show_domain(a, typed);
  if (!d) return d.failure();
  auto resolver = make_resolver(a.config);
  if (!resolver) return unavailable(resolver.error());
  MxCheck c;
  c.domain = std::move(*d);
  c.backend = format_backend(c.domain.backend_host, c.domain.backend_port);
  c.records = mx_records(a.config);
  MxReport& r = c.report;
  r.domain = c.domain.name;
  auto answer = resolver->mx(r.domain);
  r.lookup = answer.status;
  r.lookup_failure = lookup_failure(a.config, answer.status, answer.error);
  for (const auto& mx : answer.records) r.targets.push_back(lookup_target(a.config, *resolver, mx));
  assess(r, a.config.onboarding.mx_hosts);
  return c;
}

nlohmann::ordered_json mx_report_json(const MxCheck& c) {
  const MxReport& r = c.report;
  nlohmann::ordered_json mx = nlohmann::ordered_json::array();
  for (const auto& t : r.targets)
    mx.push_back({{"preference", t.preference},
                  {"host", t.host.empty() ? "." : t.host},
                  {"ours", t.ours},
                  {"ip_literal", t.ip_literal},
                  {"addresses", t.addresses}});
  return {{"domain", r.domain},
          {"role", to_string(r.role)},
          {"role_description", role_description(r.role, c.backend)},
          {"delivers_to", c.backend},
          {"ok", r.ok},
          {"lookup", dns::to_string(r.lookup)},
          {"mx", mx},
          {"warnings", r.warnings}};
}

}  // namespace mxguard::admin
