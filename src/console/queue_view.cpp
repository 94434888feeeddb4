// The delivery queue as the console shows it: tenant scope and list filters.
#include "queue_view.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "mxguard/core/strings.hpp"
#include "output.hpp"

namespace mxguard::console {

namespace {

// The lower-cased domain of an address, "" when it has none.
std::string recipient_domain(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos) return "";
  return to_lower(address.substr(at + 1));
}

}  // namespace

QueueScope QueueScope::everything() {
  QueueScope s;
  s.all_ = true;
  return s;
}

QueueScope QueueScope::of_domains(std::set<std::string> domains) {
  QueueScope s;
  s.domains_ = std::move(domains);
  return s;
}

Result<QueueScope> QueueScope::of(const store::ConfigStore& store, const Principal& p) {
  switch (p.role) {
    case store::Role::kOperator: return everything();
    case store::Role::kCustomerAdmin:
    case store::Role::kPostmaster: {
      auto domains = store.domains();
      if (!domains) return Error{domains.error()};
      std::set<std::string> names;
      for (const auto& d : *domains)
        if (may_manage_domain(p, d)) names.insert(to_lower(d.name));
      return of_domains(std::move(names));
    }
    case store::Role::kUser: break;
  }
  return Error{not_permitted("the mail queue is for operators, customer admins and postmasters")};
}

bool QueueScope::sees(std::string_view address) const {
  if (all_) return true;
  std::string d = recipient_domain(address);
  return !d.empty() && domains_.contains(d);
}

bool QueueScope::covers_domain(std::string_view domain) const {
  return all_ || domains_.contains(to_lower(domain));
}

QueueView view_of(const QueueScope& scope, const store::Envelope& e, const store::QueueEntry& q) {
  QueueView v;
  for (auto& r : store::pending_recipients(e, q)) {
    if (scope.sees(r.address)) v.pending.push_back(std::move(r));
    else v.shared = true;
  }
  for (const auto& r : e.recipients)
    if (scope.sees(r)) v.recipients.push_back(r);
  return v;
}

std::vector<std::string> pending_domains(const std::vector<store::QueueRecipient>& pending) {
  std::vector<std::string> out;
  for (const auto& r : pending) {
    std::string d = recipient_domain(r.address);
    if (!d.empty()) out.push_back(std::move(d));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool matches(const QueueFilter& f, store::QueueState state, const std::vector<store::QueueRecipient>& pending) {
  if (f.state && *f.state != state) return false;
  if (f.domain.empty()) return true;
  return std::any_of(pending.begin(), pending.end(),
                     [&](const store::QueueRecipient& r) { return recipient_domain(r.address) == f.domain; });
}

Result<store::QueueState> parse_queue_state(std::string_view s) {
  if (s == "queued") return store::QueueState::kQueued;
  if (s == "deferred") return store::QueueState::kDeferred;
  return Error{fmt::format("--state must be queued or deferred, not '{}'", printable(s))};
}

std::string_view queue_state_name(store::QueueState s) {
  return s == store::QueueState::kDeferred ? "deferred" : "queued";
}

}  // namespace mxguard::console
