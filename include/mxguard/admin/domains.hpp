// The domain operations behind `mxguard domain ...` and /api/v1/domains: each
// takes who acts and typed input, checks permission, validates everything
// before it writes, writes the audit entry and returns the result.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/admin/access.hpp"
#include "mxguard/admin/failure.hpp"
#include "mxguard/core/config.hpp"
#include "mxguard/store/config_store.hpp"

namespace mxguard::admin {

// Who acts, on which store, under which configuration.
struct Actor {
  const Config& config;
  store::ConfigStore& store;
  const Principal& principal;
};

// `domain add` / POST /api/v1/domains. Strings as typed; checked by add_domain.
struct NewDomain {
  std::string domain;
  std::string customer;
  std::string backend;  // HOST[:PORT]
  std::string recipients = "accept-all";
  std::string tls = "may";
  std::string trust = "ip";
  std::string auth_user;
  std::optional<std::string> auth_password;  // the front end read it (file, stdin, JSON)
  bool active = false;                       // skip verification: operators only
  bool force = false;                        // go ahead despite a risk (or, operators, the blocklist)
};

struct DomainAdded {
  store::Domain domain;
  bool customer_created = false;
};

// `domain set` / PATCH /api/v1/domains/{d}: KEY=VALUE settings and an optional
// new relay password (empty keeps the stored one).
struct DomainSettings {
  std::vector<std::string> assignments;
  std::string auth_password;
  bool password_given = false;  // a password source was named, even if it was empty
  bool force = false;
};

// The names `domain set` accepts, in the order the help lists them.
inline constexpr std::string_view kSettingKeys[] = {
    "backend",          "tls",
    "trust",            "auth_user",
    "recipients",       "recipient_delimiter",
    "reject_threshold", "quarantine_threshold",
    "greylist_threshold", "digest_from",
    "quarantine_days",
};

// Applies one KEY=VALUE to `d`, or says what is wrong with it (usage, field = KEY).
Outcome<bool> apply_setting(store::Domain& d, std::string_view assignment);

Outcome<std::vector<store::Domain>> list_domains(const Actor& a);
Outcome<store::Domain> show_domain(const Actor& a, std::string_view typed);
Outcome<DomainAdded> add_domain(const Actor& a, const NewDomain& in);
// The domain as it was before it was removed.
Outcome<store::Domain> remove_domain(const Actor& a, std::string_view typed);
Outcome<store::Domain> set_domain(const Actor& a, std::string_view typed, const DomainSettings& in);
// suspend (to = kSuspended) and resume (to = kActive).
Outcome<store::Domain> set_domain_status(const Actor& a, std::string_view typed, store::DomainStatus to);

// `domain verify`: the "result" names are a contract for scripts.
enum class Verdict { kVerified, kAlreadyActive, kSuspended, kMissing, kNxDomain, kMismatch, kTimeout, kServFail, kError };
std::string_view verdict_name(Verdict v);

struct Verification {
  store::Domain domain;  // as stored after the check
  std::string name;      // where the TXT record belongs
  Verdict verdict = Verdict::kError;
  std::vector<std::string> found;  // each TXT record's strings joined
  std::string failure;             // lookup_failure() wording, for timeouts and errors
  bool success() const { return verdict == Verdict::kVerified || verdict == Verdict::kAlreadyActive; }
};
// Looks up the TXT record and, when it holds the token, activates the domain.
Outcome<Verification> verify_domain(const Actor& a, std::string_view typed);
nlohmann::ordered_json verification_json(const Verification& v);

// A domain as scripts and the API see it:
// {"domain","customer","status","verification":{...},"backend":{...},"recipients",...,"created","mx":[...]}
nlohmann::ordered_json domain_json(const Config& cfg, const store::Domain& d);

}  // namespace mxguard::admin
