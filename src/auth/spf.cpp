// SPF check_host() (RFC 7208 4) as an asynchronous state machine over the
// AsyncResolver; the pure parts are in spf_record.cpp and spf_macro.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "mxguard/auth/checks.hpp"
#include "mxguard/auth/spf_record.hpp"
#include "mxguard/core/strings.hpp"
#include "mxguard/dns/names.hpp"

namespace mxguard::auth {

namespace {

using dns::Answer;
using dns::LookupStatus;
using dns::MxRecord;
using dns::TxtRecord;
using spf::Kind;
using spf::Mechanism;
using spf::Qualifier;

// RFC 7208 4.6.4: terms that query DNS (include, a, mx, ptr, exists,
// redirect), void lookups, and names looked up per mx or ptr mechanism.
constexpr int kMaxDnsTerms = 10;
constexpr int kMaxVoidLookups = 2;
constexpr size_t kMaxMxNames = 10;
constexpr size_t kMaxPtrNames = 10;

SpfResult from_qualifier(Qualifier q) {
  switch (q) {
    case Qualifier::kPass: return SpfResult::kPass;
    case Qualifier::kFail: return SpfResult::kFail;
    case Qualifier::kSoftFail: return SpfResult::kSoftFail;
    case Qualifier::kNeutral: return SpfResult::kNeutral;
  }
  return SpfResult::kNeutral;
}

// RFC 7208 5: any DNS error other than NXDOMAIN (RCODE 3) is a temperror.
bool is_dns_error(LookupStatus s) {
  return s == LookupStatus::kServFail || s == LookupStatus::kTimeout || s == LookupStatus::kError;
}

bool is_void(LookupStatus s) { return s == LookupStatus::kNxDomain || s == LookupStatus::kNoData; }

template <typename R>
std::string describe(std::string_view what, std::string_view name, const Answer<R>& a) {
  return fmt::format("{} lookup for {}: {}{}{}", what, name, dns::to_string(a.status), a.error.empty() ? "" : ": ",
                     a.error);
}

std::string normalise_domain(std::string_view d) {
  std::string s = to_lower(d);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

bool is_address_literal(std::string_view s) {
  return (!s.empty() && s.front() == '[') || IpAddress::parse(s).has_value();
}

bool has_address(const std::vector<IpAddress>& list, const IpAddress& ip) {
  return std::any_of(list.begin(), list.end(), [&](const IpAddress& a) { return spf::cidr_match(a, 128, ip); });
}

// What one mechanism came to.
struct Step {
  enum class What : uint8_t { kMatch, kNoMatch, kError } what = What::kNoMatch;
  SpfResult error = SpfResult::kPermError;
  std::string why;
  static Step match() { return {What::kMatch, SpfResult::kNone, {}}; }
  static Step no_match() { return {}; }
  static Step fail(SpfResult r, std::string why) { return {What::kError, r, std::move(why)}; }
};

// One check, kept alive by the callbacks it has handed out. Terms run one at
// a time (mx and ptr fan out to address lookups and wait for all of them), so
// nothing is in flight once a result is reached, and the RFC limits bound the
// number of lookups of the whole evaluation.
class SpfCheck : public std::enable_shared_from_this<SpfCheck> {
 public:
  using Next = std::function<void(SpfResult, std::string)>;

  SpfCheck(dns::AsyncResolver& resolver, spf::MacroContext ctx, std::function<void(SpfOutcome)> done)
      : resolver_(resolver), ctx_(std::move(ctx)), done_(std::move(done)) {}

  void start(std::string domain) {
    auto self = shared_from_this();
    top_domain_ = domain;
    check_host(std::move(domain), [self](SpfResult r, std::string why) { self->finish(r, std::move(why)); });
  }

  // For a check decided before any lookup.
  void answer(std::string domain, SpfResult r, std::string why) {
    top_domain_ = std::move(domain);
    finish(r, std::move(why));
  }

  void finish(SpfResult r, std::string why) {
    if (!done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    done(SpfOutcome{r, top_domain_, std::move(why)});
  }

 private:
  struct Frame {
    std::string domain;
    spf::Record record;
    size_t next = 0;
    Next k;
  };
  using FramePtr = std::shared_ptr<Frame>;
  using StepDone = std::function<void(Step)>;

  void check_host(std::string domain, Next k) {
    domain = normalise_domain(domain);
    if (!spf::is_valid_domain(domain)) {
      k(SpfResult::kNone, fmt::format("'{}' is not a valid domain", domain));
      return;
    }
    auto self = shared_from_this();
    // Domains here are raw octets (a macro may have put a space in one); the
    // resolver takes the escaped presentation form.
    resolver_.txt(dns::presentation_name(domain), [self, domain, k = std::move(k)](Answer<TxtRecord> a) mutable {
      self->on_record(std::move(domain), std::move(k), std::move(a));
    });
  }

  void on_record(std::string domain, Next k, Answer<TxtRecord> a) {
    if (is_void(a.status)) return k(SpfResult::kNone, fmt::format("no SPF record at {}", domain));
    if (!a.ok()) return k(SpfResult::kTempError, describe("TXT", domain, a));
    std::vector<std::string> texts;
    for (auto& r : a.records) texts.push_back(std::move(r.text));
    auto chosen = spf::select_record(texts);
    if (!chosen) return k(SpfResult::kPermError, fmt::format("{}: {}", domain, chosen.error()));
    if (!*chosen) return k(SpfResult::kNone, fmt::format("no SPF record at {}", domain));
    auto record = spf::parse_record(**chosen);
    if (!record) return k(SpfResult::kPermError, fmt::format("SPF record of {}: {}", domain, record.error()));
    auto f = std::make_shared<Frame>();
    f->domain = std::move(domain);
    f->record = std::move(*record);
    f->k = std::move(k);
    evaluate(f);
  }

  // Runs the terms from f->next on; returns at the first one that must wait.
  void evaluate(const FramePtr& f) {
    while (f->next < f->record.mechanisms.size()) {
      size_t i = f->next++;
      const Mechanism& m = f->record.mechanisms[i];
      if (m.kind == Kind::kAll) return matched(f, m);
      if (m.kind == Kind::kIp4 || m.kind == Kind::kIp6) {
        if (spf::cidr_match(m.network, m.kind == Kind::kIp4 ? m.cidr4 : m.cidr6, ctx_.ip)) return matched(f, m);
        continue;
      }
      if (++dns_terms_ > kMaxDnsTerms)
        return f->k(SpfResult::kPermError, fmt::format("more than {} DNS-querying terms (at {} in {})",
                                                       kMaxDnsTerms, m.text, f->domain));
      auto self = shared_from_this();
      return run_mechanism(f, m, [self, f, i](Step s) { self->resume(f, i, std::move(s)); });
    }
    if (f->record.redirect) return redirect(f);
    f->k(SpfResult::kNeutral, fmt::format("no mechanism matched in {}", f->domain));
  }

  void resume(const FramePtr& f, size_t i, Step s) {
    switch (s.what) {
      case Step::What::kMatch: return matched(f, f->record.mechanisms[i]);
      case Step::What::kError: return f->k(s.error, std::move(s.why));
      case Step::What::kNoMatch: return evaluate(f);
    }
  }

  void matched(const FramePtr& f, const Mechanism& m) {
    f->k(from_qualifier(m.qualifier), fmt::format("{} matched in {}", m.text, f->domain));
  }

  void redirect(const FramePtr& f) {
    if (++dns_terms_ > kMaxDnsTerms)
      return f->k(SpfResult::kPermError, fmt::format("more than {} DNS-querying terms (at redirect= in {})",
                                                     kMaxDnsTerms, f->domain));
    auto self = shared_from_this();
    with_target(f, *f->record.redirect, [self, f](std::optional<std::string> target) {
      if (!target) return f->k(SpfResult::kPermError, fmt::format("redirect= in {} names no valid domain", f->domain));
      self->check_host(*target, [k = f->k, t = *target](SpfResult r, std::string why) {
        // RFC 7208 6.1: a redirect to a domain without a record is a permerror.
        if (r == SpfResult::kNone) return k(SpfResult::kPermError, fmt::format("redirect target {}: {}", t, why));
        k(r, std::move(why));
      });
    });
  }

  // -- targets and macros -------------------------------------------------

  // The mechanism's <target-name>: the current domain, or its domain-spec
  // expanded; nullopt when the expansion is no name that can be asked.
  void with_target(const FramePtr& f, const std::string& spec, std::function<void(std::optional<std::string>)> then) {
    if (spec.empty()) return then(f->domain);
    auto self = shared_from_this();
    auto expand_now = [self, f, spec, then = std::move(then)] {
      auto ctx = self->ctx_;
      ctx.domain = f->domain;
      ctx.validated = self->validated_for(f->domain);
      auto name = spf::expand(spec, ctx);
      if (!name) return then(std::nullopt);
      std::string n = normalise_domain(*name);
      if (!dns::is_query_name(n)) return then(std::nullopt);
      then(std::move(n));
    };
    if (spf::uses_macro(spec, 'p')) return validate(std::move(expand_now));
    expand_now();
  }

  // %{p}: a validated name equal to the domain, else one below it, else any (RFC 7208 7.3).
  std::string validated_for(const std::string& domain) const {
    if (validated_.empty()) return "unknown";
    for (const auto& n : validated_)
      if (n == domain) return n;
    for (const auto& n : validated_)
      if (n.ends_with("." + domain)) return n;
    return validated_.front();
  }

  // The validated names of the client (RFC 7208 5.5), found once per check:
  // PTR names whose addresses include the client. Lookup errors only drop names.
  void validate(std::function<void()> then) {
    if (validation_done_) return then();
    auto self = shared_from_this();
    resolver_.ptr(ctx_.ip, [self, then = std::move(then)](Answer<std::string> a) mutable {
      self->ptr_void_ = is_void(a.status);
      if (!a.ok()) {
        self->validation_done_ = true;
        return then();
      }
      if (a.records.size() > kMaxPtrNames) a.records.resize(kMaxPtrNames);
      self->confirm_names(std::move(a.records), std::move(then));
    });
  }

  void confirm_names(std::vector<std::string> names, std::function<void()> then) {
    struct Join {
      std::vector<std::string> names;
      std::vector<bool> ok;
      size_t left = 0;
      std::function<void()> then;
    };
    auto join = std::make_shared<Join>();
    join->names = std::move(names);
    join->ok.assign(join->names.size(), false);
    join->left = join->names.size();
    join->then = std::move(then);
    auto self = shared_from_this();
    for (size_t i = 0; i < join->names.size(); ++i) {
      lookup_addresses(join->names[i], [self, join, i](Answer<IpAddress> a) {
        join->ok[i] = a.ok() && has_address(a.records, self->ctx_.ip);
        if (--join->left > 0) return;
        for (size_t j = 0; j < join->names.size(); ++j)
          if (join->ok[j]) self->validated_.push_back(normalise_domain(join->names[j]));
        self->validation_done_ = true;
        join->then();
      });
    }
    if (join->names.empty()) {
      validation_done_ = true;
      join->then();
    }
  }

  // A for an IPv4 client, AAAA for IPv6: only same-family addresses can match.
  void lookup_addresses(const std::string& name, dns::AsyncResolver::Callback<IpAddress> cb) {
    if (ctx_.ip.v6) resolver_.aaaa(name, std::move(cb));
    else resolver_.a(name, std::move(cb));
  }

  // False once the void-lookup limit is passed.
  bool note_void() { return ++void_lookups_ <= kMaxVoidLookups; }

  Step void_step(const Mechanism& m, const std::string& target) {
    if (note_void()) return Step::no_match();
    return Step::fail(SpfResult::kPermError,
                      fmt::format("more than {} void lookups (at {} for {})", kMaxVoidLookups, m.text, target));
  }

  // -- mechanisms that query DNS --------------------------------------------

  void run_mechanism(const FramePtr& f, const Mechanism& m, StepDone done) {
    auto self = shared_from_this();
    with_target(f, m.domain_spec, [self, f, &m, done = std::move(done)](std::optional<std::string> target) {
      if (!target) {
        // A name made from the sender's text that cannot even be asked
        // matches nothing, as a name that does not exist would.
        if (m.kind == Kind::kInclude)
          return done(Step::fail(SpfResult::kPermError, fmt::format("{} names no valid domain", m.text)));
        return done(self->void_step(m, m.domain_spec));
      }
      switch (m.kind) {
        case Kind::kInclude: return self->include(*target, done);
        case Kind::kA: return self->mech_a(m, *target, done);
        case Kind::kMx: return self->mech_mx(m, *target, done);
        case Kind::kPtr: return self->mech_ptr(m, *target, done);
        case Kind::kExists: return self->mech_exists(m, *target, done);
        default: return done(Step::no_match());
      }
    });
  }

  void include(const std::string& target, StepDone done) {
    check_host(target, [done = std::move(done), target](SpfResult r, std::string why) {
      // RFC 7208 5.2: the included result decides only whether "include" matches.
      switch (r) {
        case SpfResult::kPass: return done(Step::match());
        case SpfResult::kFail:
        case SpfResult::kSoftFail:
        case SpfResult::kNeutral: return done(Step::no_match());
        case SpfResult::kTempError: return done(Step::fail(SpfResult::kTempError, std::move(why)));
        case SpfResult::kPermError: return done(Step::fail(SpfResult::kPermError, std::move(why)));
        case SpfResult::kNone:
          return done(Step::fail(SpfResult::kPermError, fmt::format("include:{}: {}", target, why)));
      }
    });
  }

  void mech_a(const Mechanism& m, const std::string& target, StepDone done) {
    auto self = shared_from_this();
    unsigned prefix = ctx_.ip.v6 ? m.cidr6 : m.cidr4;
    auto on_addresses = [self, &m, target, prefix, done = std::move(done)](Answer<IpAddress> a) {
      if (is_void(a.status)) return done(self->void_step(m, target));
      if (!a.ok()) return done(Step::fail(SpfResult::kTempError, describe("address", target, a)));
      done(self->any_in(a.records, prefix) ? Step::match() : Step::no_match());
    };
    lookup_addresses(dns::presentation_name(target), std::move(on_addresses));
  }

  bool any_in(const std::vector<IpAddress>& list, unsigned prefix) const {
    return std::any_of(list.begin(), list.end(),
                       [&](const IpAddress& a) { return spf::cidr_match(a, prefix, ctx_.ip); });
  }

  void mech_mx(const Mechanism& m, const std::string& target, StepDone done) {
    auto self = shared_from_this();
    resolver_.mx(dns::presentation_name(target), [self, &m, target, done = std::move(done)](Answer<MxRecord> a) {
      if (is_void(a.status)) return done(self->void_step(m, target));
      if (!a.ok()) return done(Step::fail(SpfResult::kTempError, describe("MX", target, a)));
      std::vector<std::string> hosts;
      for (auto& r : a.records)
        if (!r.is_null()) hosts.push_back(std::move(r.host));
      if (hosts.size() > kMaxMxNames)
        return done(Step::fail(SpfResult::kPermError,
                               fmt::format("{}: {} has more than {} MX names", m.text, target, kMaxMxNames)));
      self->mx_hosts(m, std::move(hosts), std::move(done));
    });
  }

  // All MX hosts are asked at once; a match anywhere wins over an error elsewhere.
  void mx_hosts(const Mechanism& m, std::vector<std::string> hosts, StepDone done) {
    if (hosts.empty()) return done(Step::no_match());
    struct Join {
      size_t left = 0;
      bool match = false;
      std::string error;
      StepDone done;
    };
    auto join = std::make_shared<Join>();
    join->left = hosts.size();
    join->done = std::move(done);
    auto self = shared_from_this();
    unsigned prefix = ctx_.ip.v6 ? m.cidr6 : m.cidr4;
    for (const auto& host : hosts) {
      lookup_addresses(host, [self, join, host, prefix](Answer<IpAddress> a) {
        if (a.ok() && self->any_in(a.records, prefix)) join->match = true;
        if (is_dns_error(a.status) && join->error.empty()) join->error = describe("address", host, a);
        if (--join->left > 0) return;
        if (join->match) return join->done(Step::match());
        if (!join->error.empty()) return join->done(Step::fail(SpfResult::kTempError, join->error));
        join->done(Step::no_match());
      });
    }
  }

  void mech_ptr(const Mechanism& m, const std::string& target, StepDone done) {
    auto self = shared_from_this();
    // Validated names come from PTR answers, in presentation form.
    validate([self, &m, target = dns::presentation_name(target), done = std::move(done)] {
      if (self->ptr_void_ && !self->note_void())
        return done(Step::fail(SpfResult::kPermError, fmt::format("more than {} void lookups (at {})",
                                                                  kMaxVoidLookups, m.text)));
      for (const auto& n : self->validated_)
        if (n == target || n.ends_with("." + target)) return done(Step::match());
      done(Step::no_match());
    });
  }

  void mech_exists(const Mechanism& m, const std::string& target, StepDone done) {
    auto self = shared_from_this();
    // Always an A query, whatever the client's family (RFC 7208 5.7).
    resolver_.a(dns::presentation_name(target), [self, &m, target, done = std::move(done)](Answer<IpAddress> a) {
      if (is_void(a.status)) return done(self->void_step(m, target));
      if (!a.ok()) return done(Step::fail(SpfResult::kTempError, describe("A", target, a)));
      done(Step::match());
    });
  }

  dns::AsyncResolver& resolver_;
  spf::MacroContext ctx_;
  std::function<void(SpfOutcome)> done_;
  std::string top_domain_;
  int dns_terms_ = 0;
  int void_lookups_ = 0;
  bool validation_done_ = false;
  bool ptr_void_ = false;
  std::vector<std::string> validated_;
};

}  // namespace

std::string_view to_string(SpfResult r) {
  switch (r) {
    case SpfResult::kNone: return "none";
    case SpfResult::kNeutral: return "neutral";
    case SpfResult::kPass: return "pass";
    case SpfResult::kFail: return "fail";
    case SpfResult::kSoftFail: return "softfail";
    case SpfResult::kTempError: return "temperror";
    case SpfResult::kPermError: return "permerror";
  }
  return "none";
}

void check_spf(dns::AsyncResolver& resolver, const SpfRequest& request, std::function<void(SpfOutcome)> done) {
  spf::MacroContext ctx;
  ctx.ip = dns::unmap_v4(request.client);
  ctx.helo = normalise_domain(request.helo);
  ctx.timestamp = static_cast<int64_t>(std::time(nullptr));
  std::string_view sender = request.sender;
  if (sender.size() >= 2 && sender.front() == '<' && sender.back() == '>') sender = sender.substr(1, sender.size() - 2);
  std::string domain;
  if (sender.empty()) {
    // RFC 7208 2.4: a null reverse-path is checked as postmaster@<HELO>.
    ctx.local_part = "postmaster";
    domain = ctx.helo;
  } else {
    size_t at = sender.rfind('@');
    ctx.local_part = at == std::string_view::npos || at == 0 ? "postmaster" : std::string(sender.substr(0, at));
    domain = normalise_domain(at == std::string_view::npos ? sender : sender.substr(at + 1));
  }
  ctx.sender = ctx.local_part + "@" + domain;
  ctx.sender_domain = domain;
  auto check = std::make_shared<SpfCheck>(resolver, std::move(ctx), std::move(done));
  if (is_address_literal(domain) || !spf::is_valid_domain(domain)) {
    // RFC 7208 4.3: no valid domain to check is "none", answered without DNS
    // but still from the resolver's loop, never from inside this call.
    std::string why = domain.empty() ? "no domain to check" : fmt::format("'{}' is not a valid domain", domain);
    resolver.post([check, domain, why] {
      check->answer(domain, SpfResult::kNone, why);
    });
    return;
  }
  check->start(std::move(domain));
}

}  // namespace mxguard::auth
