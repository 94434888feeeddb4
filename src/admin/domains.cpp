// Domain operations: add, list, show, remove, settings, suspend/resume and
// DNS verification, shared by the console and the web API.
#include "mxguard/admin/domains.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "mxguard/admin/dns_report.hpp"
#include "mxguard/admin/onboarding.hpp"
#include "mxguard/admin/risks.hpp"
#include "mxguard/admin/text.hpp"
#include "mxguard/admin/token.hpp"
#include "mxguard/admin/validate.hpp"

namespace mxguard::admin {

namespace {

Failure usage_of(const std::string& message, std::string_view field) { return usage(message, std::string(field)); }

// Delivery settings that only make sense together: AUTH needs a user, and a
// user without AUTH would be silently ignored.
Status check_trust(const NewDomain& o) {
  if (auto s = check_choice("--trust", o.trust, {"ip", "auth"}); !s) return s;
  if (o.trust == "auth" && o.auth_user.empty()) return Error{"--trust auth needs --auth-user"};
  if (o.trust != "auth" && !o.auth_user.empty()) return Error{"--auth-user needs --trust auth"};
  if (!o.auth_user.empty()) return check_auth_user(o.auth_user);
  return {};
}

// Every check on the input, before the store is written, so a refused
// request writes nothing.
Outcome<store::Domain> domain_from_input(const NewDomain& o) {
  auto name = normalize_domain(o.domain);
  if (!name) return usage_of(name.error(), "domain");
  if (auto s = check_customer_name(o.customer); !s) return usage_of(s.error(), "customer");
  auto backend = parse_backend(o.backend);
  if (!backend) return usage_of(backend.error(), "backend");
  if (auto s = check_choice("--recipients", o.recipients, {"accept-all", "callout", "list"}); !s)
    return usage_of(s.error(), "recipients");
  if (auto s = check_choice("--tls", o.tls, {"none", "may", "encrypt", "dane"}); !s) return usage_of(s.error(), "tls");
  if (auto s = check_trust(o); !s) return usage_of(s.error(), "trust");

  store::Domain d;
  d.name = std::move(*name);
  d.customer = o.customer;
  d.status = o.active ? store::DomainStatus::kActive : store::DomainStatus::kPendingVerification;
  d.backend_host = backend->host;
  d.backend_port = backend->port;
  d.recipients_mode = o.recipients;
  d.tls_policy = o.tls;
  d.trust = o.trust;
  d.auth_user = o.auth_user;
  if (o.auth_password) {
    if (o.trust != "auth") return usage_of("--auth-password-file needs --trust auth", "auth_password");
    d.auth_password = *o.auth_password;
  }
  return d;
}

RiskFacts risk_facts(const Actor& a, std::string_view domain, std::string& error) {
  RiskFacts facts;
  facts.dane_trust_anchor = !a.config.delivery.dane_trust_anchor.empty();
  auto known = a.store.recipients(domain);
  if (!known) error = known.error();
  else facts.recipients = known->size();
  return facts;
}

Result<double> parse_score(std::string_view key, std::string_view v) {
  std::string s(v);
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(d) || d < -1000 || d > 1000)
    return Error{fmt::format("{}: '{}' is not a score between -1000 and 1000", key, v)};
  return d;
}

Status apply_one(store::Domain& d, std::string_view key, std::string_view v) {
  if (key == "backend") {
    auto b = parse_backend(v);
    if (!b) return Error{b.error()};
    d.backend_host = b->host;
    d.backend_port = b->port;
  } else if (key == "tls") {
    if (auto s = check_choice("tls", v, {"none", "may", "encrypt", "dane"}); !s) return s;
    d.tls_policy = std::string(v);
  } else if (key == "trust") {
    if (auto s = check_choice("trust", v, {"ip", "auth"}); !s) return s;
    d.trust = std::string(v);
  } else if (key == "auth_user") {
    if (!v.empty())
      if (auto s = check_auth_user(v); !s) return s;
    d.auth_user = std::string(v);
  } else if (key == "recipients") {
    if (auto s = check_choice("recipients", v, {"accept-all", "callout", "list"}); !s) return s;
    d.recipients_mode = std::string(v);
  } else if (key == "recipient_delimiter") {
    if (auto s = store::check_recipient_delimiter(v); !s) return s;
    d.recipient_delimiter = std::string(v);
  } else if (key == "reject_threshold" || key == "quarantine_threshold" || key == "greylist_threshold") {
    auto score = parse_score(key, v);
    if (!score) return Error{score.error()};
    (key == "reject_threshold" ? d.reject_threshold
     : key == "quarantine_threshold" ? d.quarantine_threshold : d.greylist_threshold) = *score;
  } else if (key == "digest_from") {
    size_t at = v.rfind('@');
    if (at == std::string_view::npos || at == 0 || !normalize_domain(v.substr(at + 1)) ||
        v.find_first_of(" \t<>\"") != std::string_view::npos)
      return Error{fmt::format("digest_from: '{}' is not an address", v)};
    d.digest_from = std::string(v);
  } else if (key == "quarantine_days") {
    unsigned days = 0;
    auto r = std::from_chars(v.data(), v.data() + v.size(), days);
    if (r.ec != std::errc() || r.ptr != v.data() + v.size() || days < 1 || days > 3650)
      return Error{fmt::format("quarantine_days: '{}' is not a number of days from 1 to 3650", v)};
    d.quarantine_days = days;
  } else {
    return Error{fmt::format("unknown setting '{}' ({})", key, fmt::join(kSettingKeys, ", "))};
  }
  return {};
}

// The keys of KEY=VALUE assignments, for the risk checks.
std::set<std::string> changed_keys(const std::vector<std::string>& assignments) {
  std::set<std::string> keys;
  for (const auto& a : assignments) keys.insert(a.substr(0, a.find('=')));
  return keys;
}

Outcome<std::string> normalized(std::string_view typed) {
  auto name = normalize_domain(typed);
  if (!name) return usage(name.error(), "domain");
  return std::move(*name);
}

// What the TXT answer says about the token; a match only counts within one
// record (its strings joined), never across records.
Verdict judge(const dns::Answer<dns::TxtRecord>& a, std::string_view token) {
  using dns::LookupStatus;
  switch (a.status) {
    case LookupStatus::kOk: break;
    case LookupStatus::kNoData: return Verdict::kMissing;
    case LookupStatus::kNxDomain: return Verdict::kNxDomain;
    case LookupStatus::kServFail: return Verdict::kServFail;
    case LookupStatus::kTimeout: return Verdict::kTimeout;
    case LookupStatus::kError: return Verdict::kError;
  }
  for (const auto& r : a.records)
    if (r.text == token) return Verdict::kVerified;
  return Verdict::kMismatch;
}

// Flips the domain to active, decided and written in one transaction: the
// lookup took a while, so a concurrent change of status or token wins over
// what was seen before it.
Result<Verdict> activate(store::ConfigStore& store, Verification& o) {
  Verdict verdict = Verdict::kVerified;
  auto updated = store.update_domain(o.domain.name, [&](store::Domain& d) -> Status {
    o.domain = d;
    if (d.status == store::DomainStatus::kActive) verdict = Verdict::kAlreadyActive;
    else if (d.status == store::DomainStatus::kSuspended) verdict = Verdict::kSuspended;
    else if (std::find(o.found.begin(), o.found.end(), d.verify_token) == o.found.end()) verdict = Verdict::kMismatch;
    if (verdict != Verdict::kVerified) return Error{"unchanged"};  // aborts: nothing written
    d.status = store::DomainStatus::kActive;
    return {};
  });
  if (verdict != Verdict::kVerified) return verdict;
  if (!updated) return Error{updated.error()};
  if (!*updated) return Error{fmt::format("domain {} was removed while it was being verified", o.domain.name)};
  o.domain = std::move(**updated);
  return Verdict::kVerified;
}

}  // namespace

Outcome<bool> apply_setting(store::Domain& d, std::string_view assignment) {
  size_t eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0) return usage(fmt::format("'{}' is not KEY=VALUE", assignment));
  std::string_view key = assignment.substr(0, eq);
  if (auto s = apply_one(d, key, assignment.substr(eq + 1)); !s) return usage_of(s.error(), key);
  return true;
}

Outcome<std::vector<store::Domain>> list_domains(const Actor& a) {
  auto domains = a.store.domains();
  if (!domains) return unavailable(domains.error());
  std::erase_if(*domains, [&](const store::Domain& d) { return !may_manage_domain(a.principal, d); });
  return std::move(*domains);
}

Outcome<store::Domain> show_domain(const Actor& a, std::string_view typed) {
  auto name = normalized(typed);
  if (!name) return name.failure();
  return managed_domain(a.store, a.principal, *name);
}

Outcome<DomainAdded> add_domain(const Actor& a, const NewDomain& in) {
  // Postmasters and users never add domains: refused before the input is
  // looked at, so a refusal does not depend on (or tell about) the input.
  if (a.principal.role == store::Role::kPostmaster || a.principal.role == store::Role::kUser)
    return forbidden("adding domains");
  auto d = domain_from_input(in);
  if (!d) return d.failure();
  if (!may_manage_customer(a.principal, d->customer))
    return forbidden(fmt::format("adding domains for customer {}", d->customer));
  if (!is_operator(a.principal) && in.active) return forbidden("--active is for operators");
  auto blocklist = Blocklist::load_default();
  if (!blocklist) return unavailable(blocklist.error());
  // Anyone may confirm a risky setting with force; only an operator's force
  // lets a domain on the high-value blocklist in.
  auto refusal = admit_new_domain(a.store, *d, *blocklist, in.force && is_operator(a.principal));
  if (!refusal) return unavailable(refusal.error());
  if (*refusal) return std::move(**refusal);
  // A pending domain gets no mail before it is verified, so recipients=list
  // without recipients only counts when it starts active.
  std::string error;
  RiskFacts facts = risk_facts(a, d->name, error);
  if (!error.empty()) return unavailable(error);
  std::set<std::string> keys = {"tls", "trust"};
  if (in.active) keys.insert("recipients");
  if (auto risks = setting_risks(*d, keys, facts); !risks.empty() && !in.force)
    return Failure{Category::kNeedsForce, force_refusal(risks)};

  // Active domains get a token too, so every record has the same shape and a
  // later re-verification has something to check.
  auto token = new_verify_token();
  if (!token) return unavailable(token.error());
  d->verify_token = std::move(*token);
  d->created_ms = now_ms();

  auto outcome = a.store.add_domain(*d, true);
  if (!outcome) return unavailable(outcome.error());
  using Added = store::ConfigStore::AddOutcome;
  // Someone else added the name between our check and our write.
  if (*outcome == Added::kDomainExists) return conflict(fmt::format("domain {} already exists", d->name));
  if (auto s = audit(a.store, a.principal, "domain.add", d->name, nullptr, domain_record(*d)); !s)
    return unavailable(s.error());
  return DomainAdded{std::move(*d), *outcome == Added::kAddedWithCustomer};
}

Outcome<store::Domain> remove_domain(const Actor& a, std::string_view typed) {
  auto name = normalized(typed);
  if (!name) return name.failure();
  auto before = managed_domain(a.store, a.principal, *name);
  if (!before) return before;
  if (a.principal.role == store::Role::kPostmaster) return forbidden("a postmaster cannot remove the domain");
  auto removed = a.store.remove_domain(*name);
  if (!removed) return unavailable(removed.error());
  if (!*removed) return not_found(fmt::format("no such domain: {}", *name));
  if (auto s = audit(a.store, a.principal, "domain.remove", *name, domain_record(*before), nullptr); !s)
    return unavailable(s.error());
  return before;
}

Outcome<store::Domain> set_domain(const Actor& a, std::string_view typed, const DomainSettings& in) {
  if (in.assignments.empty() && !in.password_given)
    return usage("nothing to change: give KEY=VALUE settings or --auth-password-file");
  auto m = show_domain(a, typed);
  if (!m) return m;
  std::string error;
  RiskFacts facts = risk_facts(a, m->name, error);
  if (!error.empty()) return unavailable(error);
  std::set<std::string> keys = changed_keys(in.assignments);
  // The settings are applied to the record as it is inside the write
  // transaction, so a concurrent change to other settings is not lost.
  store::Domain before;
  std::optional<Failure> refused;
  auto updated = a.store.update_domain(m->name, [&](store::Domain& d) -> Status {
    before = d;
    for (const auto& assignment : in.assignments) {
      if (auto s = apply_setting(d, assignment); !s) {
        refused = s.failure();
        return Error{s.failure().message};
      }
    }
    if (!in.auth_password.empty()) d.auth_password = in.auth_password;  // empty keeps the stored password
    if (d.reject_threshold < d.quarantine_threshold)
      refused = usage(fmt::format("reject_threshold ({}) must be >= quarantine_threshold ({})", d.reject_threshold,
                                  d.quarantine_threshold),
                      "reject_threshold");
    else if (d.trust == "auth" && d.auth_user.empty())
      refused = usage("trust=auth needs auth_user", "auth_user");
    else if (auto risks = setting_risks(d, keys, facts); !risks.empty() && !in.force)
      refused = Failure{Category::kNeedsForce, force_refusal(risks)};
    if (refused) return Error{refused->message};
    return {};
  });
  if (refused) return *refused;
  if (!updated) return unavailable(updated.error());
  if (!*updated) return not_found(fmt::format("no such domain: {}", m->name));
  if (auto s = audit(a.store, a.principal, "domain.set", (*updated)->name, domain_record(before),
                     domain_record(**updated));
      !s)
    return unavailable(s.error());
  return std::move(**updated);
}

Outcome<store::Domain> set_domain_status(const Actor& a, std::string_view typed, store::DomainStatus to) {
  auto m = show_domain(a, typed);
  if (!m) return m;
  if (!is_operator(a.principal) && a.principal.role != store::Role::kCustomerAdmin)
    return forbidden("suspending or resuming domains");
  store::DomainStatus was{};
  bool pending = false;
  auto updated = a.store.update_domain(m->name, [&](store::Domain& d) -> Status {
    was = d.status;
    if (d.status == store::DomainStatus::kPendingVerification) {
      pending = true;
      return Error{fmt::format("{} is pending verification; verify it first", d.name)};
    }
    d.status = to;
    return {};
  });
  if (!updated) return pending ? usage(updated.error()) : unavailable(updated.error());
  if (!*updated) return not_found(fmt::format("no such domain: {}", m->name));
  if (auto s = audit(a.store, a.principal, to == store::DomainStatus::kActive ? "domain.resume" : "domain.suspend",
                     (*updated)->name, {{"status", store::to_string(was)}}, {{"status", store::to_string(to)}});
      !s)
    return unavailable(s.error());
  return std::move(**updated);
}

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kVerified: return "verified";
    case Verdict::kAlreadyActive: return "already_active";
    case Verdict::kSuspended: return "suspended";
    case Verdict::kMissing: return "missing";
    case Verdict::kNxDomain: return "nxdomain";
    case Verdict::kMismatch: return "mismatch";
    case Verdict::kTimeout: return "timeout";
    case Verdict::kServFail: return "servfail";
    case Verdict::kError: return "error";
  }
  return "error";
}

Outcome<Verification> verify_domain(const Actor& a, std::string_view typed) {
  auto m = show_domain(a, typed);
  if (!m) return m.failure();
  Verification o;
  o.name = verification_name(a.config, m->name);
  o.domain = std::move(*m);
  if (o.domain.status == store::DomainStatus::kActive) o.verdict = Verdict::kAlreadyActive;
  if (o.domain.status == store::DomainStatus::kSuspended) o.verdict = Verdict::kSuspended;
  if (o.domain.status != store::DomainStatus::kPendingVerification) return o;

  auto resolver = make_resolver(a.config);
  if (!resolver) return unavailable(resolver.error());
  auto answer = resolver->txt(o.name);
  for (const auto& r : answer.records) o.found.push_back(r.text);
  o.verdict = judge(answer, o.domain.verify_token);
  o.failure = lookup_failure(a.config, answer.status, answer.error);
  if (o.verdict != Verdict::kVerified) return o;
  auto activated = activate(a.store, o);
  if (!activated) return unavailable(activated.error());
  o.verdict = *activated;
  if (o.verdict == Verdict::kVerified)
    if (auto s = audit(a.store, a.principal, "domain.verify", o.domain.name, {{"status", "pending_verification"}},
                       {{"status", "active"}});
        !s)
      return unavailable(s.error());
  return o;
}

nlohmann::ordered_json verification_json(const Verification& o) {
  return {{"domain", o.domain.name},
          {"status", store::to_string(o.domain.status)},
          {"expected", {{"name", o.name}, {"type", "TXT"}, {"value", o.domain.verify_token}}},
          {"found", o.found},
          {"result", verdict_name(o.verdict)}};
}

nlohmann::ordered_json domain_json(const Config& cfg, const store::Domain& d) {
  nlohmann::ordered_json mx = nlohmann::ordered_json::array();
  for (const auto& r : mx_records(cfg)) mx.push_back({{"preference", r.preference}, {"host", r.host}});
  return {{"domain", d.name},
          {"customer", d.customer},
          {"status", store::to_string(d.status)},
          {"verification",
           {{"name", verification_name(cfg, d.name)}, {"type", "TXT"}, {"value", d.verify_token}, {"ttl", kVerifyTtl}}},
          {"backend",
           {{"host", d.backend_host},
            {"port", d.backend_port},
            {"tls", d.tls_policy},
            {"trust", d.trust},
            {"auth_user", d.auth_user},
            {"auth_password_set", !d.auth_password.empty()}}},
          {"recipients", d.recipients_mode},
          {"recipient_delimiter", d.recipient_delimiter},
          {"thresholds",
           {{"reject", d.reject_threshold}, {"quarantine", d.quarantine_threshold}, {"greylist", d.greylist_threshold}}},
          {"digest_from", d.digest_from},
          {"quarantine_days", d.quarantine_days},
          {"created", iso8601(d.created_ms)},
          {"mx", mx}};
}

}  // namespace mxguard::admin
