// The quarantine operations: list/search, show, release, delete, each
// within the principal's scope. The console and mxguard-web call these.
#include "mxguard/admin/quarantine.hpp"

#include <sodium.h>

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <set>

#include "mxguard/admin/onboarding.hpp"
#include "mxguard/admin/text.hpp"
#include "mxguard/admin/validate.hpp"
#include "mxguard/bayes/bayes.hpp"
#include "mxguard/core/strings.hpp"
#include "mxguard/scan/active.hpp"
#include "mxguard/scan/scanner.hpp"
#include "mxguard/store/policy.hpp"
#include "mxguard/store/spool.hpp"

namespace mxguard::admin {

namespace {

mime::Limits limits_for(const Config& cfg) {
  mime::Limits l;
  l.max_depth = cfg.scan.mime_max_depth;
  l.max_parts = cfg.scan.mime_max_parts;
  return l;
}

// Missing messages and other tenants' messages get the same refusal for
// non-operators, so ids of other customers' mail never leak.
Failure no_such_message(const Principal& p, std::string_view id) {
  if (is_operator(p)) return not_found(fmt::format("no such quarantined message: {}", id));
  return out_of_scope("quarantined message", id);
}

// Opens the spool named by the id's shard suffix; null when that shard has
// no spool (opening it would create one).
Result<std::unique_ptr<store::Spool>> spool_for(const Config& cfg, std::string_view id) {
  unsigned shard = static_cast<unsigned>(store::shard_of_message_id(id));
  auto shards = store::Spool::existing_shards(cfg.state_dir);
  if (std::find(shards.begin(), shards.end(), shard) == shards.end()) return std::unique_ptr<store::Spool>();
  return store::Spool::open(cfg.state_dir, shard);
}

struct Located {
  std::unique_ptr<store::Spool> spool;
  HeldMessage held;
};

// Finds a held message the principal may see.
Outcome<Located> locate(const Actor& a, const QuarantineScope& scope, const std::string& id) {
  if (auto s = check_message_id(id); !s) return usage(s.error(), "id");
  auto opened = spool_for(a.config, id);
  if (!opened) return unavailable(opened.error());
  if (!*opened) return no_such_message(a.principal, id);
  Located out;
  out.spool = std::move(*opened);
  auto r = store::quarantine_get(*out.spool, id);
  if (!r) return unavailable(r.error());
  if (!*r) return no_such_message(a.principal, id);
  out.held.visible = scope.visible((*r)->held());
  if (out.held.visible.empty()) return no_such_message(a.principal, id);
  out.held.record = std::move(**r);
  return out;
}

// The recipients a release or delete acts on: the named ones (each held
// and visible), else every held recipient the principal may see.
Outcome<std::vector<std::string>> targets_for(const HeldMessage& h, const QuarantineScope& scope,
                                              const std::vector<std::string>& named) {
  if (named.empty()) return h.visible;
  std::vector<std::string> out;
  for (const auto& typed : named) {
    auto addr = quarantine_address(typed, "recipients");
    if (!addr) return addr.failure();
    if (!scope.sees(*addr)) return out_of_scope("recipient", *addr);
    auto it = std::find_if(h.visible.begin(), h.visible.end(), [&](const std::string& v) { return iequals(v, *addr); });
    if (it == h.visible.end())
      return usage(fmt::format("{} is not held in quarantine for message {}", *addr, h.record.envelope.id), "recipients");
    if (std::find(out.begin(), out.end(), *it) == out.end()) out.push_back(*it);
  }
  return out;
}

// A quarantine action as a tracking event, so `mxguard track --id` shows it
// on the message's path. The action is done already: a failure to record it
// is reported (the returned warning), not undone.
std::string track_action(store::Spool& spool, const store::QuarantineRecord& r, std::string_view decision,
                         const std::vector<std::string>& targets, std::string reason, std::string copy_id) {
  store::TrackEvent e;
  e.time_ms = now_ms();
  e.shard = static_cast<unsigned>(store::shard_of_message_id(r.envelope.id));
  e.client_ip = r.envelope.client_ip;
  e.sender = r.envelope.sender;
  e.recipients = targets;
  e.decision = std::string(decision);
  e.reason = std::move(reason);
  e.message_id = r.envelope.id;
  e.ref_id = std::move(copy_id);
  if (auto st = spool.add_events({e}); !st)
    return fmt::format("the {} of {} is not in the tracking log: {}", decision, r.envelope.id, st.error());
  return {};
}

// Trains the shared Bayes model with the client's message (without the
// header fields we added), tokenized exactly as the engine's scanner does.
Status learn(const Config& cfg, store::ConfigStore& store, std::string_view content, bool spam) {
  if (sodium_init() < 0) return Error{"libsodium did not initialise"};
  auto active = scan::load_active(store, scan::rules_dir_for(cfg.scan));
  if (!active) return Error{active.error()};
  auto model = bayes::Model::open(cfg.state_dir);
  if (!model) return Error{model.error()};
  scan::Scanner scanner(active->rules);
  scan::ScanOptions options;
  options.rules = false;
  options.dkim = false;
  options.limits = limits_for(cfg);
  scan::MessageScan ms(scanner, options);
  ms.feed(content);
  ms.finish();
  if (auto s = (*model)->learn(learn_key(content), ms.tokens().hashes(), spam); !s)
    return Error{fmt::format("Bayes: {}", s.error())};
  return {};
}

Result<std::string> client_content(const store::Spool& spool, const store::QuarantineRecord& r) {
  auto data = store::quarantine_message(spool, r.envelope.id);
  if (!data) return Error{data.error()};
  if (!*data) return Error{fmt::format("quarantined message {} disappeared", r.envelope.id)};
  return (*data)->substr(r.content_offset);
}

bool search_matches(const HeldMessage& h, const std::string& needle) {
  const store::Envelope& e = h.record.envelope;
  auto has = [&](std::string_view s) { return to_lower(s).find(needle) != std::string::npos; };
  return has(e.sender) || has(e.subject) || has(e.message_id) ||
         std::any_of(h.visible.begin(), h.visible.end(), [&](const std::string& r) { return has(r); });
}

// The allow-list entries a release with allow_sender adds: the sender in
// each target's domain, which the principal must manage (users do not).
Outcome<std::vector<store::ListEntry>> allow_entries(const Actor& a, const HeldMessage& h,
                                                    const std::vector<std::string>& targets) {
  const std::string& sender = h.record.envelope.sender;
  if (sender.empty()) return usage("the message has no sender (<>) to allow", "allow_sender");
  auto target = store::canonical_list_entry(store::ListKind::kSender, sender);
  if (!target) return usage(fmt::format("the sender cannot be allowed: {}", target.error()), "allow_sender");
  std::set<std::string> domains;
  for (const auto& t : targets) domains.insert(store::quarantine_domain_of(t));
  std::vector<store::ListEntry> out;
  for (const auto& d : domains) {
    auto managed = managed_domain(a.store, a.principal, d);
    if (!managed) {
      if (a.principal.role == store::Role::kUser)
        return forbidden(fmt::format("allowing a sender in {} is for the domain's admins", d));
      return managed.failure();
    }
    store::ListEntry e;
    e.scope = d;
    e.action = store::ListAction::kAllow;
    e.kind = target->kind;
    e.value = target->value;
    e.added_ms = now_ms();
    out.push_back(std::move(e));
  }
  return out;
}

// An operator can clear a record that no longer decodes (nothing else can
// read or release it). Returns nullopt-like `false` when the record is readable.
Outcome<bool> delete_unreadable(const Actor& a, const std::string& id) {
  if (auto s = check_message_id(id); !s) return false;
  auto spool = spool_for(a.config, id);
  if (!spool || !*spool) return false;
  auto r = store::quarantine_get(**spool, id);
  if (r) return false;
  auto gone = store::quarantine_delete(**spool, id, {});
  if (!gone) return unavailable(gone.error());
  if (auto s = audit(a.store, a.principal, "quarantine.delete", id, {{"id", id}, {"unreadable", true}}, nullptr); !s)
    return unavailable(s.error());
  return true;
}

}  // namespace

std::string learn_key(std::string_view data) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : digest) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

Outcome<std::string> quarantine_address(std::string_view typed, std::string field) {
  std::string_view s = trim(typed);
  size_t at = s.rfind('@');
  bool ok = at != std::string_view::npos && at > 0 && at + 1 < s.size() && s.size() <= 320;
  for (char c : s) ok = ok && static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
  if (!ok) return usage(fmt::format("'{}' is not an address (local@domain)", printable(typed)), std::move(field));
  return to_lower(s);
}

Outcome<std::vector<HeldMessage>> list_quarantine(const Actor& a, const QuarantineFilter& f) {
  auto scope = QuarantineScope::of(a.store, a.principal);
  if (!scope) return unavailable(scope.error());
  const int64_t now = now_ms();
  store::QuarantineQuery q;
  if (!f.since.empty()) {
    auto t = parse_time_arg(f.since, now);
    if (!t) return usage(t.error(), "since");
    q.since_ms = *t;
  }
  if (!f.until.empty()) {
    auto t = parse_time_arg(f.until, now);
    if (!t) return usage(t.error(), "until");
    q.until_ms = *t;
  }
  std::string recipient, domain;
  if (!f.recipient.empty()) {
    auto addr = quarantine_address(f.recipient);
    if (!addr) return addr.failure();
    if (!scope->sees(*addr)) return out_of_scope("recipient", *addr);
    recipient = *addr;
    q.recipients = {recipient};
  }
  if (!f.domain.empty()) {
    auto d = normalize_domain(f.domain);
    if (!d) return usage(d.error(), "domain");
    if (!scope->covers_domain(*d)) return out_of_scope("domain", *d);
    domain = *d;
  }
  // Narrow the index walk to what the principal may see; an empty query
  // would mean "everything", which only operators get.
  bool nothing = false;
  if (q.recipients.empty()) {
    for (const auto& addr : scope->addresses())
      if (domain.empty() || store::quarantine_domain_of(addr) == domain) q.recipients.push_back(addr);
    if (!scope->addresses().empty()) nothing = q.recipients.empty();
    else if (!domain.empty()) q.domains = {domain};
    else if (!scope->all()) q.domains.assign(scope->domains().begin(), scope->domains().end());
    if (!scope->all() && q.recipients.empty() && q.domains.empty()) nothing = true;
  }

  const std::string needle = to_lower(f.search);
  std::vector<HeldMessage> rows;
  for (unsigned shard : nothing ? std::vector<unsigned>() : store::Spool::existing_shards(a.config.state_dir)) {
    auto spool = store::Spool::open(a.config.state_dir, shard);
    if (!spool) return unavailable(spool.error());
    auto records = store::quarantine_list(**spool, q);
    if (!records) return unavailable(fmt::format("spool {}: {}", shard, records.error()));
    for (auto& r : *records) {
      HeldMessage h;
      for (const auto& v : scope->visible(r.held()))
        if ((recipient.empty() || iequals(v, recipient)) &&
            (domain.empty() || store::quarantine_domain_of(v) == domain))
          h.visible.push_back(v);
      if (h.visible.empty()) continue;
      h.record = std::move(r);
      if (!needle.empty() && !search_matches(h, needle)) continue;
      rows.push_back(std::move(h));
    }
  }
  std::sort(rows.begin(), rows.end(), [](const HeldMessage& x, const HeldMessage& y) {
    const store::Envelope &p = x.record.envelope, &q2 = y.record.envelope;
    return p.received_ms != q2.received_ms ? p.received_ms < q2.received_ms : p.id < q2.id;
  });
  return rows;
}

Outcome<ShownMessage> show_quarantined(const Actor& a, std::string_view typed_id) {
  std::string id(typed_id);
  auto scope = QuarantineScope::of(a.store, a.principal);
  if (!scope) return unavailable(scope.error());
  auto loc = locate(a, *scope, id);
  if (!loc) return loc.failure();
  auto data = store::quarantine_message(*loc->spool, id);
  if (!data) return unavailable(data.error());
  if (!*data) return no_such_message(a.principal, id);
  ShownMessage out;
  out.preview = make_preview(**data, limits_for(a.config));
  out.held = std::move(loc->held);
  return out;
}

nlohmann::ordered_json shown_json(const ShownMessage& m) {
  nlohmann::ordered_json j = quarantine_json(m.held.record, m.held.visible);
  nlohmann::ordered_json preview = preview_json(m.preview);
  for (auto& [k, v] : preview.items()) j[k] = v;
  return j;
}

Outcome<Released> release_quarantined(const Actor& a, const QuarantineAction& in) {
  auto scope = QuarantineScope::of(a.store, a.principal);
  if (!scope) return unavailable(scope.error());
  auto loc = locate(a, *scope, in.id);
  if (!loc) return loc.failure();
  const HeldMessage& h = loc->held;
  auto targets = targets_for(h, *scope, in.recipients);
  if (!targets) return targets.failure();
  std::vector<store::ListEntry> allow;
  if (in.allow_sender) {
    auto entries = allow_entries(a, h, *targets);
    if (!entries) return entries.failure();
    allow = std::move(*entries);
  }
  auto content = client_content(*loc->spool, h.record);
  if (!content) return unavailable(content.error());
  // Ham first: learning is idempotent, so a release that then fails can
  // simply be repeated.
  if (auto s = learn(a.config, a.store, *content, false); !s) return unavailable(s.error());
  auto queued = store::quarantine_release(*loc->spool, in.id, *targets, now_ms());
  if (!queued) return unavailable(queued.error());
  Released out;
  out.id = in.id;
  out.queued_id = *queued;
  out.recipients = *targets;
  out.warning = track_action(*loc->spool, h.record, "released", *targets,
                             fmt::format("released by {}; queued for delivery as {}", a.principal.name, *queued),
                             *queued);
  if (auto s = audit(a.store, a.principal, "quarantine.release", in.id, {{"id", in.id}, {"recipients", *targets}},
                     {{"queued_id", *queued}});
      !s)
    return unavailable(s.error());
  for (const auto& e : allow) {
    auto changed = a.store.add_list_entry(e);
    if (!changed) return unavailable(changed.error());
    out.allowed_in.push_back(e.scope);
    if (!*changed) continue;
    nlohmann::ordered_json entry{{"list", store::to_string(e.action)}, {"scope", e.scope},
                                 {"kind", store::to_string(e.kind)}, {"value", e.value}};
    if (auto s = audit(a.store, a.principal, "list.add", e.scope, nullptr, entry); !s) return unavailable(s.error());
  }
  return out;
}

Outcome<Deleted> delete_quarantined(const Actor& a, const QuarantineAction& in) {
  auto scope = QuarantineScope::of(a.store, a.principal);
  if (!scope) return unavailable(scope.error());
  if (is_operator(a.principal) && in.recipients.empty() && !in.learn_spam) {
    auto cleared = delete_unreadable(a, in.id);
    if (!cleared) return cleared.failure();
    if (*cleared) {
      Deleted d;
      d.id = in.id;
      d.unreadable = true;
      return d;
    }
  }
  auto loc = locate(a, *scope, in.id);
  if (!loc) return loc.failure();
  const HeldMessage& h = loc->held;
  auto targets = targets_for(h, *scope, in.recipients);
  if (!targets) return targets.failure();
  if (in.learn_spam) {
    auto content = client_content(*loc->spool, h.record);
    if (!content) return unavailable(content.error());
    if (auto s = learn(a.config, a.store, *content, true); !s) return unavailable(s.error());
  }
  auto gone = store::quarantine_delete(*loc->spool, in.id, *targets);
  if (!gone) return unavailable(gone.error());
  Deleted out;
  out.id = in.id;
  out.recipients = *targets;
  out.learned_spam = in.learn_spam;
  out.warning = track_action(*loc->spool, h.record, "deleted", *targets,
                             fmt::format("deleted by {}{}", a.principal.name, in.learn_spam ? " and learned as spam" : ""),
                             {});
  if (auto s = audit(a.store, a.principal, "quarantine.delete", in.id,
                     {{"id", in.id}, {"recipients", *targets}, {"learn_spam", in.learn_spam}}, nullptr);
      !s)
    return unavailable(s.error());
  return out;
}

}  // namespace mxguard::admin
