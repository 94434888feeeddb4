// HELO/rDNS sanity: the HELO argument's form, whether it resolves to the
// client, and whether the client's PTR name resolves back to it.
#include <fmt/format.h>

#include <algorithm>

#include "mxguard/auth/checks.hpp"
#include "mxguard/auth/dnsbl.hpp"
#include "mxguard/core/strings.hpp"
#include "mxguard/dns/names.hpp"

namespace mxguard::auth {

namespace helo {

namespace {

bool is_ldh_label(std::string_view l) {
  if (l.empty() || l.size() > 63 || l.front() == '-' || l.back() == '-') return false;
  return std::all_of(l.begin(), l.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

}  // namespace

Form classify(std::string_view text) {
  Form f;
  std::string_view s = trim(text);
  std::string_view inner = s;
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') {
    inner = s.substr(1, s.size() - 2);
    if (istarts_with(inner, "ipv6:")) inner.remove_prefix(5);
  }
  // inet_pton turns an IPv4-mapped IPv6 literal into the IPv4 address.
  if (auto ip = IpAddress::parse(inner)) {
    f.literal = true;
    f.address = dns::unmap_v4(*ip);
    return f;
  }
  if (s.ends_with('.')) s.remove_suffix(1);
  if (s.empty() || s.size() > 253) return f;
  size_t labels = 0;
  std::string_view last;
  size_t start = 0;
  while (start <= s.size()) {
    size_t dot = s.find('.', start);
    auto label = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!is_ldh_label(label)) return f;
    ++labels;
    last = label;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  // An all-numeric top label is an address gone wrong, not a host name.
  bool numeric_tld = std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; });
  f.fqdn = labels >= 2 && !numeric_tld;
  if (f.fqdn) f.name = to_lower(s);
  return f;
}

}  // namespace helo

namespace {

using dns::Answer;
using dns::LookupStatus;

// PTR names checked forward per client; more are rare and only cost lookups.
constexpr size_t kMaxRdnsNames = 5;

bool is_failure(LookupStatus s) {
  return s == LookupStatus::kServFail || s == LookupStatus::kTimeout || s == LookupStatus::kError;
}

bool same_address(const IpAddress& a, const IpAddress& b) {
  IpAddress x = dns::unmap_v4(a), y = dns::unmap_v4(b);
  return x.v6 == y.v6 && x.bytes == y.bytes;
}

bool contains(const std::vector<IpAddress>& list, const IpAddress& ip) {
  return std::any_of(list.begin(), list.end(), [&](const IpAddress& a) { return same_address(a, ip); });
}

// The HELO lookup and the PTR chain run side by side; the callback waits for both.
class HeloCheck : public std::enable_shared_from_this<HeloCheck> {
 public:
  HeloCheck(dns::AsyncResolver& resolver, IpAddress client, std::function<void(HeloOutcome)> done)
      : resolver_(resolver), client_(client), done_(std::move(done)) {}

  void start(const helo::Form& form) {
    out_.helo_is_ip_literal = form.literal;
    out_.helo_syntax_bad = !form.literal && !form.fqdn;
    if (form.address) out_.helo_matches_client = same_address(*form.address, client_);
    auto self = shared_from_this();
    // Both branches are started before either can finish: answers only
    // arrive from the resolver's loop.
    open_ = form.fqdn ? 2 : 1;
    if (form.fqdn) {
      resolver_.addresses(form.name, [self](Answer<IpAddress> a) {
        self->out_.helo_resolves = a.ok();
        self->out_.helo_matches_client = a.ok() && contains(a.records, self->client_);
        if (is_failure(a.status)) self->out_.temp_error = true;
        self->branch_done();
      });
    }
    resolver_.ptr(client_, [self](Answer<std::string> a) { self->on_ptr(std::move(a)); });
  }

 private:
  void on_ptr(Answer<std::string> a) {
    if (is_failure(a.status)) out_.temp_error = true;
    if (!a.ok()) return branch_done();
    out_.rdns_present = true;
    out_.rdns_name = a.records.front();
    if (a.records.size() > kMaxRdnsNames) a.records.resize(kMaxRdnsNames);
    struct Join {
      std::vector<std::string> names;
      std::vector<bool> confirmed;
      size_t left = 0;
      bool failed = false;
    };
    auto join = std::make_shared<Join>();
    join->names = std::move(a.records);
    join->confirmed.assign(join->names.size(), false);
    join->left = join->names.size();
    auto self = shared_from_this();
    for (size_t i = 0; i < join->names.size(); ++i) {
      auto cb = [self, join, i](Answer<IpAddress> r) {
        join->confirmed[i] = r.ok() && contains(r.records, self->client_);
        if (is_failure(r.status)) join->failed = true;
        if (--join->left > 0) return;
        auto hit = std::find(join->confirmed.begin(), join->confirmed.end(), true);
        if (hit != join->confirmed.end()) {
          self->out_.rdns_confirmed = true;
          self->out_.rdns_name = join->names[static_cast<size_t>(hit - join->confirmed.begin())];
        } else if (join->failed) {
          // Unconfirmed only because a lookup failed: say so rather than score it.
          self->out_.temp_error = true;
        }
        self->branch_done();
      };
      if (client_.v6) resolver_.aaaa(join->names[i], std::move(cb));
      else resolver_.a(join->names[i], std::move(cb));
    }
  }

  void branch_done() {
    if (--open_ > 0 || !done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(out_));
  }

  dns::AsyncResolver& resolver_;
  IpAddress client_;
  std::function<void(HeloOutcome)> done_;
  HeloOutcome out_;
  int open_ = 0;
};

}  // namespace

void check_helo(dns::AsyncResolver& resolver, const IpAddress& client, std::string_view helo_text,
                std::function<void(HeloOutcome)> done) {
  auto check = std::make_shared<HeloCheck>(resolver, dns::unmap_v4(client), std::move(done));
  check->start(helo::classify(helo_text));
}

}  // namespace mxguard::auth
