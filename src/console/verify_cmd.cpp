// `mxguard domain verify DOMAIN`: looks for the ownership token in TXT at
// <verify_label>.<domain> and activates a pending domain when it is there.
#include <fmt/format.h>

#include <memory>

#include "dns_commands.hpp"
#include "onboarding.hpp"
#include "output.hpp"

namespace mxguard::console {

namespace {

using admin::Verdict;
using admin::Verification;

struct VerifyOptions {
  std::string domain;
  bool json = false;
};

std::string in_quotes(std::string_view s) { return fmt::format("\"{}\"", printable(s)); }

// A hint for the common near miss: the token published with extra text around it.
std::string near_miss(std::string_view value, std::string_view token) {
  if (value.find(token) != std::string_view::npos) return "  (contains the token plus other text: publish the token alone)";
  return {};
}

void print_found(const Verification& o) {
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
std::string summary(const Verification& o) {
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

int report(const Verification& o, bool json) {
  if (json) {
    print_json_line(admin::verification_json(o));
    return o.success() ? kExitOk : kExitRuntime;
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

int run_verify(const Context& ctx, const VerifyOptions& opts) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto outcome = admin::verify_domain(actor(ctx, **store), opts.domain);
  if (!outcome) return fail(outcome.failure());
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
