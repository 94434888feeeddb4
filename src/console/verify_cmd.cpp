// `mxguard domain verify DOMAIN`: looks for the ownership token in TXT at
// <verify_label>.<domain> and activates a pending domain when it is there.
#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "dns_commands.hpp"
#include "dns_report.hpp"
#include "onboarding.hpp"
#include "output.hpp"

namespace mxguard::console {

namespace {

struct VerifyOptions {
  std::string domain;
  bool json = false;
};

// The "result" of the JSON object; names are a contract for scripts.
enum class Verdict { kVerified, kAlreadyActive, kSuspended, kMissing, kNxDomain, kMismatch, kTimeout, kServFail, kError };

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

struct Outcome {
  store::Domain domain;  // as stored after the command
  std::string name;      // where the TXT record belongs
  Verdict verdict = Verdict::kError;
  std::vector<std::string> found;  // each TXT record's strings joined
  std::string failure;             // lookup_failure() wording, for timeouts and errors
};

bool has_token(const std::vector<std::string>& found, std::string_view token) {
  return std::find(found.begin(), found.end(), token) != found.end();
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

// Flips the domain to active. The lookup took a while and the write replaces
// the whole record, so the domain is read again just before: a concurrent
// change of status or token wins over what we saw earlier.
Result<Verdict> activate(store::ConfigStore& store, Outcome& o) {
  // Decided and written in one transaction: the record seen is the record changed.
  Verdict verdict = Verdict::kVerified;
  auto updated = store.update_domain(o.domain.name, [&](store::Domain& d) -> Status {
    o.domain = d;
    if (d.status == store::DomainStatus::kActive) verdict = Verdict::kAlreadyActive;
    else if (d.status == store::DomainStatus::kSuspended) verdict = Verdict::kSuspended;
    else if (!has_token(o.found, d.verify_token)) verdict = Verdict::kMismatch;
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

nlohmann::ordered_json outcome_json(const Outcome& o) {
  return {{"domain", o.domain.name},
          {"status", store::to_string(o.domain.status)},
          {"expected", {{"name", o.name}, {"type", "TXT"}, {"value", o.domain.verify_token}}},
          {"found", o.found},
          {"result", verdict_name(o.verdict)}};
}

std::string in_quotes(std::string_view s) { return fmt::format("\"{}\"", printable(s)); }

// A hint for the common near miss: the token published with extra text around it.
std::string near_miss(std::string_view value, std::string_view token) {
  if (value.find(token) != std::string_view::npos) return "  (contains the token plus other text: publish the token alone)";
  return {};
}

void print_found(const Outcome& o) {
  switch (o.verdict) {
    case Verdict::kMissing: fmt::print("Found:     nothing: the name exists but has no TXT record\n"); break;
    case Verdict::kNxDomain: fmt::print("Found:     nothing: the name does not exist (NXDOMAIN)\n"); break;
    case Verdict::kMismatch:
      fmt::print("Found:     {}, none of them the token:\n", count_of(o.found.size(), "TXT record", "TXT records"));
      for (const auto& v : o.found) fmt::print("             {}{}\n", in_quotes(v), near_miss(v, o.domain.verify_token));
      break;
    default: fmt::print("Found:     nothing: the lookup {}\n", o.failure); break;
  }
}

// The one-line reason on stderr for a domain that was not verified.
std::string summary(const Outcome& o) {
  std::string_view d = o.domain.name;
  switch (o.verdict) {
    case Verdict::kSuspended:
      return fmt::format("{} is suspended: verification does not reactivate it (resume it instead)", d);
    case Verdict::kMissing: return fmt::format("{} not verified: no TXT record at {}", d, o.name);
    case Verdict::kNxDomain: return fmt::format("{} not verified: {} does not exist in DNS (NXDOMAIN)", d, o.name);
    case Verdict::kMismatch:
      return fmt::format("{} not verified: none of the TXT records at {} is the token {}", d, o.name,
                         o.domain.verify_token);
    default: return fmt::format("{} not verified: the TXT lookup of {} {}", d, o.name, o.failure);
  }
}

int report(const Outcome& o, bool json) {
  bool success = o.verdict == Verdict::kVerified || o.verdict == Verdict::kAlreadyActive;
  if (json) {
    print_json_line(outcome_json(o));
    return success ? kExitOk : kExitRuntime;
  }
  if (o.verdict == Verdict::kVerified) {
    fmt::print("Verified {}: {} TXT holds the token. The domain is now active.\n", o.domain.name, o.name);
    return kExitOk;
  }
  if (o.verdict == Verdict::kAlreadyActive) {
    fmt::print("{} is already active; there is nothing to verify.\n", o.domain.name);
    return kExitOk;
  }
  if (o.verdict != Verdict::kSuspended) {
    fmt::print("Looked up: {} TXT\n", o.name);
    fmt::print("Expected:  {}\n", in_quotes(o.domain.verify_token));
    print_found(o);
    fmt::print("Publish:   {}. {} IN TXT {}\n", o.name, kVerifyTtl, in_quotes(o.domain.verify_token));
  }
  return runtime_error(summary(o));
}

// Looks up the TXT record and, when it holds the token, activates the domain.
Result<Outcome> verify(const Context& ctx, store::ConfigStore& store, store::Domain d) {
  Outcome o;
  o.name = verification_name(ctx.config, d.name);
  o.domain = std::move(d);
  if (o.domain.status == store::DomainStatus::kActive) o.verdict = Verdict::kAlreadyActive;
  if (o.domain.status == store::DomainStatus::kSuspended) o.verdict = Verdict::kSuspended;
  if (o.domain.status != store::DomainStatus::kPendingVerification) return o;

  auto resolver = make_resolver(ctx.config);
  if (!resolver) return Error{resolver.error()};
  auto answer = resolver->txt(o.name);
  for (const auto& r : answer.records) o.found.push_back(r.text);
  o.verdict = judge(answer, o.domain.verify_token);
  o.failure = lookup_failure(ctx.config, answer.status, answer.error);
  if (o.verdict != Verdict::kVerified) return o;
  auto activated = activate(store, o);
  if (!activated) return Error{activated.error()};
  o.verdict = *activated;
  if (o.verdict == Verdict::kVerified)
    if (auto s = audit(store, ctx.principal, "domain.verify", o.domain.name, {{"status", "pending_verification"}},
                       {{"status", "active"}});
        !s)
      return Error{s.error()};
  return o;
}

int run_verify(const Context& ctx, const VerifyOptions& opts) {
  auto m = open_managed_domain(ctx, opts.domain);
  if (m.exit_code) return m.exit_code;
  auto outcome = verify(ctx, *m.store, std::move(m.domain));
  if (!outcome) return runtime_error(outcome.error());
  return report(*outcome, opts.json);
}

}  // namespace

void add_verify_command(CLI::App& domain_group, Commands& out) {
  auto o = std::make_shared<VerifyOptions>();
  CLI::App* cmd = domain_group.add_subcommand(
      "verify", "Look up the ownership TXT record and activate the domain when it holds the token");
  cmd->add_option("DOMAIN", o->domain, "Domain name")->required();
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_verify(ctx, *o); }});
}

}  // namespace mxguard::console
