// Resolver set-up and failure wording for the DNS-backed console commands.
#include "mxguard/admin/dns_report.hpp"

#include <fmt/format.h>

namespace mxguard::admin {

namespace {

std::string servers_text(const Config& cfg) {
  if (cfg.dns.servers.empty()) return "none configured";
  return fmt::format("{}", fmt::join(cfg.dns.servers, ", "));
}

}  // namespace

Result<dns::Resolver> make_resolver(const Config& cfg) {
  return dns::Resolver::create(cfg.dns.servers, cfg.dns.timeout);
}

std::string format_duration(Millis d) {
  if (d.count() % 1000 == 0) return fmt::format("{}s", d.count() / 1000);
  return fmt::format("{}ms", d.count());
}

std::string lookup_failure(const Config& cfg, dns::LookupStatus status, std::string_view error) {
  using dns::LookupStatus;
  switch (status) {
    case LookupStatus::kTimeout:
      return fmt::format("timed out after {} (DNS servers: {})", format_duration(cfg.dns.timeout), servers_text(cfg));
    case LookupStatus::kServFail:
      // The servers are reachable but could not get an answer: usually the
      // domain's own name servers are broken, lame or unreachable.
      return fmt::format("failed with SERVFAIL (DNS servers: {})", servers_text(cfg));
    case LookupStatus::kNxDomain: return "found that the name does not exist (NXDOMAIN)";
    case LookupStatus::kNoData: return "found no record of that type";
    case LookupStatus::kError: return fmt::format("failed: {}", error);
    case LookupStatus::kOk: break;
  }
  return "succeeded";
}

}  // namespace mxguard::admin
