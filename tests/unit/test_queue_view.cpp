// The console's view of the delivery queue: which pending recipients each
// tenant scope sees, when a message is shared with another tenant, and the
// list filters.
#include <doctest.h>

#include <string>
#include <vector>

#include "queue_view.hpp"

using namespace mxguard;
using namespace mxguard::console;

namespace {

store::Envelope envelope(std::vector<std::string> recipients, std::vector<std::string> quarantined = {}) {
  store::Envelope e;
  e.id = "0190f3c2a1b2c3.s0";
  e.sender = "alice@sender.example";
  e.recipients = std::move(recipients);
  e.quarantined = std::move(quarantined);
  return e;
}

std::vector<std::string> addresses(const std::vector<store::QueueRecipient>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.address);
  return out;
}

}  // namespace

TEST_CASE("queue view: the operator sees every pending recipient") {
  store::Envelope e = envelope({"bob@acme.example", "carol@globex.example"});
  store::QueueEntry q;
  q.recipients = {{"carol@globex.example", 0, "cannot connect to 127.0.0.1:2: Connection refused"}};
  QueueView v = view_of(QueueScope::everything(), e, q);
  CHECK(addresses(v.pending) == std::vector<std::string>{"carol@globex.example"});
  CHECK(v.pending[0].last_error == "cannot connect to 127.0.0.1:2: Connection refused");
  CHECK(v.recipients == e.recipients);
  CHECK_FALSE(v.shared);
}

TEST_CASE("queue view: a tenant sees only their recipients and learns the message is shared") {
  store::Envelope e = envelope({"bob@acme.example", "Carol@Globex.Example", "dave@acme2.example"});
  store::QueueEntry q;
  q.recipients = {{"bob@acme.example", 450, "RCPT TO:<bob@acme.example> rejected: 450 busy"},
                  {"Carol@Globex.Example", 0, ""}};
  QueueView acme = view_of(QueueScope::of_domains({"acme.example", "acme2.example"}), e, q);
  CHECK(addresses(acme.pending) == std::vector<std::string>{"bob@acme.example"});
  CHECK(acme.pending[0].last_code == 450);
  CHECK(acme.recipients == std::vector<std::string>{"bob@acme.example", "dave@acme2.example"});
  CHECK(acme.shared);

  // Domains compare case-insensitively.
  QueueView globex = view_of(QueueScope::of_domains({"globex.example"}), e, q);
  CHECK(addresses(globex.pending) == std::vector<std::string>{"Carol@Globex.Example"});
  CHECK(globex.shared);

  // A postmaster of a domain with nothing pending sees nothing pending.
  QueueView acme2 = view_of(QueueScope::of_domains({"acme2.example"}), e, q);
  CHECK(acme2.pending.empty());
  CHECK(acme2.recipients == std::vector<std::string>{"dave@acme2.example"});
}

TEST_CASE("queue view: a version 1 entry's pending recipients are the envelope's not quarantined") {
  store::Envelope e = envelope({"bob@acme.example", "eve@acme.example", "carol@globex.example"}, {"eve@acme.example"});
  store::QueueEntry q;  // no per-recipient state
  QueueView v = view_of(QueueScope::of_domains({"acme.example"}), e, q);
  CHECK(addresses(v.pending) == std::vector<std::string>{"bob@acme.example"});
  CHECK(v.shared);
  CHECK(v.pending[0].last_error.empty());
}

TEST_CASE("queue view: an empty scope and addresses without a domain see nothing") {
  QueueScope none = QueueScope::of_domains({});
  CHECK_FALSE(none.all());
  CHECK_FALSE(none.sees("bob@acme.example"));
  CHECK_FALSE(none.covers_domain("acme.example"));
  QueueScope acme = QueueScope::of_domains({"acme.example"});
  CHECK_FALSE(acme.sees("postmaster"));
  CHECK_FALSE(acme.sees("bob@sub.acme.example"));
  CHECK(acme.sees("bob@ACME.example"));
  CHECK(acme.covers_domain("Acme.Example"));
  CHECK(QueueScope::everything().sees("postmaster"));
}

TEST_CASE("queue view: pending domains are distinct, lower case and sorted") {
  std::vector<store::QueueRecipient> pending = {
      {"a@Globex.example", 0, ""}, {"b@acme.example", 0, ""}, {"c@globex.example", 0, ""}, {"local", 0, ""}};
  CHECK(pending_domains(pending) == std::vector<std::string>{"acme.example", "globex.example"});
  CHECK(pending_domains({}).empty());
}

TEST_CASE("queue view: filters by state and by a pending recipient's domain") {
  std::vector<store::QueueRecipient> pending = {{"bob@Acme.example", 0, ""}, {"carol@globex.example", 0, ""}};
  QueueFilter any;
  CHECK(matches(any, store::QueueState::kQueued, pending));
  CHECK(matches(any, store::QueueState::kDeferred, {}));

  QueueFilter deferred;
  deferred.state = store::QueueState::kDeferred;
  CHECK(matches(deferred, store::QueueState::kDeferred, pending));
  CHECK_FALSE(matches(deferred, store::QueueState::kQueued, pending));

  QueueFilter acme;
  acme.domain = "acme.example";
  CHECK(matches(acme, store::QueueState::kQueued, pending));
  CHECK_FALSE(matches(acme, store::QueueState::kQueued, {{"dave@other.example", 0, ""}}));
  CHECK_FALSE(matches(acme, store::QueueState::kQueued, {}));
  // A subdomain is another domain.
  CHECK_FALSE(matches(acme, store::QueueState::kQueued, {{"x@mail.acme.example", 0, ""}}));

  acme.state = store::QueueState::kQueued;
  CHECK_FALSE(matches(acme, store::QueueState::kDeferred, pending));
}

TEST_CASE("queue view: states as typed") {
  CHECK(parse_queue_state("queued").value() == store::QueueState::kQueued);
  CHECK(parse_queue_state("deferred").value() == store::QueueState::kDeferred);
  CHECK_FALSE(parse_queue_state("Deferred"));
  CHECK_FALSE(parse_queue_state(""));
  CHECK_FALSE(parse_queue_state("active"));
  CHECK(queue_state_name(store::QueueState::kDeferred) == "deferred");
  CHECK(queue_state_name(store::QueueState::kQueued) == "queued");
}
