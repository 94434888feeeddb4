// Planning digests from the quarantine indexes and queueing them: the digest
// is an ordinary queued message, delivered by the engine's shard to the
// recipient domain's backend like a released copy.
#include "mxguard/digest/send.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "mxguard/core/strings.hpp"
#include "mxguard/store/quarantine.hpp"

namespace mxguard::digest {

namespace {

constexpr int64_t kDayMs = 86'400'000;

struct Directory {
  std::map<std::string, store::Domain> domains;        // by name
  std::map<std::string, RecipientScope> owner_of;      // held address -> scope of its owner
};

// Users of role user with an address, each of their addresses mapped to
// the owner's scope (user_addresses).
Result<Directory> read_directory(const store::ConfigStore& store) {
  Directory dir;
  auto domains = store.domains();
  if (!domains) return Error{domains.error()};
  for (auto& d : *domains) dir.domains.emplace(d.name, std::move(d));
  auto users = store.users();
  if (!users) return Error{users.error()};
  for (const auto& u : *users) {
    if (u.role != store::Role::kUser || u.address.empty()) continue;
    auto addresses = user_addresses(store, u);
    if (!addresses) return Error{addresses.error()};
    // The own address outside the customer: no scope to merge into.
    if (addresses->empty() || (*addresses)[0] != to_lower(u.address)) continue;
    RecipientScope s;
    s.recipient = to_lower(u.address);
    s.user = u.name;
    s.digest_on = u.digest;
    s.addresses = std::move(*addresses);
    for (const auto& a : s.addresses) dir.owner_of.emplace(a, s);
  }
  return dir;
}

RecipientScope scope_in(const Directory& dir, const std::string& address) {
  if (auto it = dir.owner_of.find(address); it != dir.owner_of.end()) return it->second;
  return RecipientScope{address, "", true, {address}};
}

}  // namespace

Result<std::vector<std::string>> user_addresses(const store::ConfigStore& store, const store::User& u) {
  std::vector<std::string> out;
  if (u.customer.empty()) return out;
  std::vector<std::string> candidates{u.address};
  candidates.insert(candidates.end(), u.shadows.begin(), u.shadows.end());
  for (const auto& c : candidates) {
    std::string a = to_lower(c);
    std::string domain = store::quarantine_domain_of(a);
    if (domain.empty() || std::find(out.begin(), out.end(), a) != out.end()) continue;
    auto d = store.domain(domain);
    if (!d) return Error{d.error()};
    if (*d && (*d)->customer == u.customer) out.push_back(std::move(a));
  }
  return out;
}

Result<RecipientScope> recipient_scope(const store::ConfigStore& store, std::string_view recipient) {
  auto dir = read_directory(store);
  if (!dir) return Error{dir.error()};
  RecipientScope s = scope_in(*dir, to_lower(recipient));
  // A shadow address is seen through its owner's digest, never as a recipient of its own.
  if (s.recipient != to_lower(recipient)) return RecipientScope{to_lower(recipient), "", true, {}};
  return s;
}

Result<Plan> plan_digests(const store::ConfigStore& store, const std::vector<const store::Spool*>& spools,
                          int64_t until_ms) {
  auto dir = read_directory(store);
  if (!dir) return Error{dir.error()};
  Plan plan;
  plan.until_ms = until_ms;
  std::map<std::string, PlannedDigest> by_recipient;
  std::map<std::string, int64_t> last;
  store::QuarantineQuery q;
  q.until_ms = until_ms;
  for (const store::Spool* spool : spools) {
    auto records = store::quarantine_list(*spool, q);
    if (!records) return Error{records.error()};
    for (const auto& r : *records) {
      const store::Envelope& e = r.envelope;
      // One entry per recipient and message, naming each of the recipient's
      // addresses it is held for.
      std::map<std::string, Entry> entries;
      for (const auto& held : r.held()) {
        std::string address = to_lower(held);
        auto dom = dir->domains.find(store::quarantine_domain_of(address));
        if (dom == dir->domains.end()) continue;
        RecipientScope scope = scope_in(*dir, address);
        auto own = dir->domains.find(store::quarantine_domain_of(scope.recipient));
        if (own == dir->domains.end()) continue;
        auto seen = last.find(scope.recipient);
        if (seen == last.end()) {
          auto t = store.last_digest(scope.recipient);
          if (!t) return Error{t.error()};
          seen = last.emplace(scope.recipient, *t).first;
        }
        if (e.received_ms < seen->second) continue;
        if (!scope.digest_on) {
          if (std::find(plan.off.begin(), plan.off.end(), scope.recipient) == plan.off.end())
            plan.off.push_back(scope.recipient);
          continue;
        }
        auto pd = by_recipient.find(scope.recipient);
        if (pd == by_recipient.end()) {
          PlannedDigest d;
          d.domain = own->first;
          d.from = own->second.digest_from.empty() ? "postmaster@" + own->first : own->second.digest_from;
          d.since_ms = seen->second;
          d.scope = scope;
          pd = by_recipient.emplace(scope.recipient, std::move(d)).first;
        }
        int64_t expires = e.received_ms + static_cast<int64_t>(dom->second.quarantine_days) * kDayMs;
        auto [it, fresh] = entries.try_emplace(scope.recipient);
        Entry& entry = it->second;
        if (fresh) {
          entry.id = e.id;
          entry.sender = e.sender;
          entry.subject = e.subject;
          entry.received_ms = e.received_ms;
          entry.score = e.score;
          entry.expires_ms = expires;
        }
        entry.expires_ms = std::min(entry.expires_ms, expires);
        entry.held_for.push_back(address);
      }
      for (auto& [recipient, entry] : entries) by_recipient[recipient].entries.push_back(std::move(entry));
    }
  }
  for (auto& [recipient, d] : by_recipient) {
    std::stable_sort(d.entries.begin(), d.entries.end(),
                     [](const Entry& a, const Entry& b) { return a.received_ms < b.received_ms; });
    plan.digests.push_back(std::move(d));
  }
  return plan;
}

Result<std::string> queue_digest(store::Spool& spool, unsigned shard, const PlannedDigest& d, const DigestMail& mail,
                                 int64_t now_ms) {
  store::Envelope e;
  e.sender = d.from;
  e.recipients = {d.scope.recipient};
  e.received_ms = now_ms;
  e.size = mail.data.size();
  e.subject = mail.subject;
  e.message_id = mail.message_id;
  auto non_ascii = [](std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
  };
  e.smtputf8 = non_ascii(e.sender) || non_ascii(d.scope.recipient);
  auto txn = store::Txn::begin(spool.env(), false);
  if (!txn) return Error{txn.error()};
  const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  for (unsigned n = 1;; ++n) {
    if (n > 1000) return Error{"no free id for a digest"};
    e.id = fmt::format("{:013x}-d{}.s{}", us, n, shard);
    auto taken = txn->get(spool.dbs().envelopes, e.id);
    if (!taken) return Error{taken.error()};
    if (!*taken) break;
  }
  if (auto s = spool.enqueue(*txn, e, mail.data, now_ms); !s) return Error{s.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return e.id;
}

}  // namespace mxguard::digest
