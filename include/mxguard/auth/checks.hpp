// Sender authentication and reputation checks, each an asynchronous state
// machine over dns::AsyncResolver: SPF (RFC 7208), DMARC (RFC 7489), DNSBL
// (client IP and URL hosts) and HELO/rDNS sanity. The callback runs exactly
// once, from the resolver's process()/expire(), never from inside the call
// that started the check (so callers need not be re-entrant).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/net.hpp"
#include "mxguard/dns/async_resolver.hpp"

namespace mxguard::auth {

enum class SpfResult : uint8_t { kNone, kNeutral, kPass, kFail, kSoftFail, kTempError, kPermError };
std::string_view to_string(SpfResult r);  // RFC 7208 names: "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"

struct SpfOutcome {
  SpfResult result = SpfResult::kNone;
  std::string domain;       // the domain that was checked (MAIL FROM domain, or HELO when MAIL FROM is <>)
  std::string explanation;  // the mechanism that matched or why it failed, for logs and reasons
};

struct SpfRequest {
  IpAddress client;
  std::string sender;  // MAIL FROM address ("" for <>)
  std::string helo;
};
void check_spf(dns::AsyncResolver& resolver, const SpfRequest& request, std::function<void(SpfOutcome)> done);

// One verified (or failed) DKIM signature as DMARC sees it.
struct DkimSignatureResult {
  std::string domain;  // d=
  bool pass = false;
};

enum class DmarcResult : uint8_t { kNone, kPass, kFail, kTempError, kPermError };
std::string_view to_string(DmarcResult r);  // "none", "pass", "fail", "temperror", "permerror"
enum class DmarcPolicy : uint8_t { kNone, kQuarantine, kReject };
std::string_view to_string(DmarcPolicy p);

struct DmarcOutcome {
  DmarcResult result = DmarcResult::kNone;
  DmarcPolicy policy = DmarcPolicy::kNone;  // the policy that applies (sp= for subdomains, pct honoured)
  std::string from_domain;  // RFC5322.From domain
  std::string org_domain;   // organisational domain (libpsl)
  std::string detail;
};

struct DmarcRequest {
  std::string from_domain;
  SpfOutcome spf;
  std::vector<DkimSignatureResult> dkim;
  // pct= below 100 samples failing messages on a hash of this key (the
  // message id, say), so a retried message gets the same decision. Empty:
  // the policy always applies.
  std::string sample_key;
  // How many From fields the message has. More than one is a fail under
  // p=reject without any lookup: which From the signatures cover is not the
  // one a reader may see.
  unsigned from_fields = 1;
};
void check_dmarc(dns::AsyncResolver& resolver, const DmarcRequest& request, std::function<void(DmarcOutcome)> done);
// The organisational domain of a host name (libpsl registrable domain; the name itself when unknown).
std::string organisational_domain(std::string_view domain);

struct DnsblHit {
  std::string zone;
  std::string listed;   // the IP or host name that is listed
  std::string answer;   // the A record returned, e.g. "127.0.0.2"
};
// IP lists (reversed-octet / nibble queries) for the client address.
void check_dnsbl_ip(dns::AsyncResolver& resolver, const IpAddress& ip, const std::vector<std::string>& zones,
                    std::function<void(std::vector<DnsblHit>)> done);
// Domain lists (URIBL style) for URL hosts; each host is reduced to its
// organisational domain and asked once.
void check_dnsbl_hosts(dns::AsyncResolver& resolver, const std::vector<std::string>& hosts,
                       const std::vector<std::string>& zones, std::function<void(std::vector<DnsblHit>)> done);

struct HeloOutcome {
  bool helo_is_ip_literal = false;   // "[1.2.3.4]" or a bare address
  bool helo_syntax_bad = false;      // not a FQDN and not a literal
  bool helo_resolves = false;        // A/AAAA of the HELO name exist
  bool helo_matches_client = false;  // ... and one is the client address
  bool rdns_present = false;         // PTR exists
  bool rdns_confirmed = false;       // a PTR name resolves back to the client address
  std::string rdns_name;
  bool temp_error = false;           // a lookup failed or timed out: do not score
};
void check_helo(dns::AsyncResolver& resolver, const IpAddress& client, std::string_view helo,
                std::function<void(HeloOutcome)> done);

}  // namespace mxguard::auth
