// How the delivery queue is seen from the console: which pending recipients a
// principal may see and act on (tenant isolation) and the list filters.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "access.hpp"
#include "mxguard/core/result.hpp"
#include "mxguard/store/config_store.hpp"
#include "mxguard/store/spool.hpp"

namespace mxguard::console {

// The recipient domains a principal may see in the queue: operators all;
// customer-admins their customer's domains; postmasters their one domain.
// Users have no queue view (their mail is either delivered or quarantined).
class QueueScope {
 public:
  static QueueScope everything();
  static QueueScope of_domains(std::set<std::string> domains);  // lower case
  // For a user principal this is an error the caller reports as "not permitted".
  static Result<QueueScope> of(const store::ConfigStore& store, const Principal& p);

  bool all() const { return all_; }
  bool sees(std::string_view address) const;
  bool covers_domain(std::string_view domain) const;

 private:
  bool all_ = false;
  std::set<std::string> domains_;
};

// What a principal sees of one queued message.
struct QueueView {
  std::vector<store::QueueRecipient> pending;  // the pending recipients in scope
  std::vector<std::string> recipients;         // the envelope recipients in scope
  bool shared = false;                         // some pending recipient is outside the scope
};

QueueView view_of(const QueueScope& scope, const store::Envelope& e, const store::QueueEntry& q);

// The distinct domains (lower case, sorted) of `pending`.
std::vector<std::string> pending_domains(const std::vector<store::QueueRecipient>& pending);

// `queue list`/`retry --all` filters; empty fields match everything.
struct QueueFilter {
  std::string domain;  // normalised: a message matches with a pending recipient in it
  std::optional<store::QueueState> state;
};

// Whether a message whose visible pending recipients are `pending` is listed.
bool matches(const QueueFilter& f, store::QueueState state, const std::vector<store::QueueRecipient>& pending);

// "queued" or "deferred" as typed on the command line.
Result<store::QueueState> parse_queue_state(std::string_view s);
std::string_view queue_state_name(store::QueueState s);

}  // namespace mxguard::console
