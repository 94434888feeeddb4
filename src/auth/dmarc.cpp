// DMARC policy discovery (RFC 7489 6.6.3) over the AsyncResolver: the From
// domain's record, else the organisational domain's; at most two lookups.
#include <fmt/format.h>

#include "mxguard/auth/checks.hpp"
#include "mxguard/auth/dmarc_record.hpp"
#include "mxguard/core/strings.hpp"
#include "mxguard/dns/names.hpp"

namespace mxguard::auth {

namespace {

using dns::Answer;
using dns::LookupStatus;
using dns::TxtRecord;

class DmarcCheck : public std::enable_shared_from_this<DmarcCheck> {
 public:
  DmarcCheck(dns::AsyncResolver& resolver, DmarcRequest request, std::string from, std::string org,
             std::function<void(DmarcOutcome)> done)
      : resolver_(resolver), request_(std::move(request)), from_(std::move(from)), org_(std::move(org)),
        done_(std::move(done)) {}

  void start() { ask(from_, false); }

  void finish(DmarcResult r, std::string detail, DmarcPolicy policy = DmarcPolicy::kNone) {
    DmarcOutcome out;
    out.result = r;
    out.policy = policy;
    out.from_domain = from_;
    out.org_domain = org_;
    out.detail = std::move(detail);
    deliver(std::move(out));
  }

 private:
  void ask(const std::string& domain, bool at_org) {
    std::string name = "_dmarc." + domain;
    if (!dns::is_query_name(name)) return finish(DmarcResult::kNone, fmt::format("{} cannot be asked", name));
    auto self = shared_from_this();
    resolver_.txt(dns::presentation_name(name),
                  [self, name, at_org](Answer<TxtRecord> a) { self->on_txt(name, at_org, std::move(a)); });
  }

  void on_txt(const std::string& name, bool at_org, Answer<TxtRecord> a) {
    bool missing = a.status == LookupStatus::kNxDomain || a.status == LookupStatus::kNoData;
    if (!missing && !a.ok())
      return finish(DmarcResult::kTempError, fmt::format("TXT lookup for {}: {}{}{}", name, dns::to_string(a.status),
                                                         a.error.empty() ? "" : ": ", a.error));
    std::vector<std::string> texts;
    for (auto& r : a.records) texts.push_back(std::move(r.text));
    auto found = dmarc::discover(texts);
    switch (found.kind) {
      case dmarc::Discovery::Kind::kNoRecord:
        // RFC 7489 6.6.3 step 3: fall back to the organisational domain once.
        if (!at_org && org_ != from_) return ask(org_, true);
        return finish(DmarcResult::kNone, fmt::format("no DMARC record for {}", from_));
      case dmarc::Discovery::Kind::kSeveral:
        return finish(DmarcResult::kNone, fmt::format("several DMARC records at {}: no policy", name));
      case dmarc::Discovery::Kind::kUnusable:
        return finish(DmarcResult::kPermError, fmt::format("DMARC record at {}: {}", name, found.error));
      case dmarc::Discovery::Kind::kRecord: break;
    }
    auto out = dmarc::evaluate(found.record, request_, from_, org_, at_org);
    out.detail += fmt::format(" (record at {})", name);
    deliver(std::move(out));
  }

  void deliver(DmarcOutcome out) {
    if (!done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(out));
  }

  dns::AsyncResolver& resolver_;
  DmarcRequest request_;
  std::string from_, org_;
  std::function<void(DmarcOutcome)> done_;
};

}  // namespace

std::string_view to_string(DmarcResult r) {
  switch (r) {
    case DmarcResult::kNone: return "none";
    case DmarcResult::kPass: return "pass";
    case DmarcResult::kFail: return "fail";
    case DmarcResult::kTempError: return "temperror";
    case DmarcResult::kPermError: return "permerror";
  }
  return "none";
}

std::string_view to_string(DmarcPolicy p) {
  switch (p) {
    case DmarcPolicy::kNone: return "none";
    case DmarcPolicy::kQuarantine: return "quarantine";
    case DmarcPolicy::kReject: return "reject";
  }
  return "none";
}

void check_dmarc(dns::AsyncResolver& resolver, const DmarcRequest& request, std::function<void(DmarcOutcome)> done) {
  std::string from = to_lower(request.from_domain);
  if (!from.empty() && from.back() == '.') from.pop_back();
  std::string org = organisational_domain(from);
  auto check = std::make_shared<DmarcCheck>(resolver, request, from, org, std::move(done));
  if (request.from_fields > 1) {
    // RFC 5322 3.6 allows one From field. With two, DKIM binds the last one
    // and the reader may see the first, so whichever domain is asked about,
    // alignment proves nothing: the message fails, under the strictest
    // policy (RFC 7489 6.6.1), whatever the signatures say.
    resolver.post([check, n = request.from_fields] {
      check->finish(DmarcResult::kFail, fmt::format("{} From fields (RFC 5322 allows one)", n), DmarcPolicy::kReject);
    });
    return;
  }
  if (from.find('.') == std::string::npos || !dns::is_query_name(from)) {
    resolver.post([check, from] {
      check->finish(DmarcResult::kNone, from.empty() ? "no From domain" : fmt::format("'{}' is no domain", from));
    });
    return;
  }
  check->start();
}

}  // namespace mxguard::auth
