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

}  // namespace

Outcome<std::vector<store::ListEntry>> sender_allow_entries(const Actor& a, const HeldMessage& h,
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

namespace {

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

// The audit owner of an action on these recipients: the first one's
// domain. An operator's action on a message no domain claims any more is
// the appliance's own.
AuditOwner owner_of_recipients(const store::ConfigStore& store, const std::vector<std::string>& rcpts) {
  if (rcpts.empty()) return {};
  auto d = store.domain(store::quarantine_domain_of(rcpts.front()));
  if (!d || !*d) return {};
  return owner_of(**d);
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

namespace {

// A filter checked against the principal's scope, as an index query plus
// what the index cannot tell.
struct PreparedSearch {
  QuarantineScope scope;
  store::QuarantineQuery q;
  std::string recipient, domain, needle;
  bool nothing = false;  // the principal can see nothing that matches

  // The message as the principal sees it, or false when it does not match.
  bool admit(store::QuarantineRecord& r, HeldMessage& h) const {
    h.visible.clear();
    for (const auto& v : scope.visible(r.held()))
      if ((recipient.empty() || iequals(v, recipient)) && (domain.empty() || store::quarantine_domain_of(v) == domain))
        h.visible.push_back(v);
    if (h.visible.empty()) return false;
    h.record = std::move(r);
    return needle.empty() || search_matches(h, needle);
  }
};

Outcome<PreparedSearch> prepare(const Actor& a, const QuarantineFilter& f) {
  auto scope = QuarantineScope::of(a.store, a.principal);
  if (!scope) return unavailable(scope.error());
  PreparedSearch ps{std::move(*scope)};
  store::QuarantineQuery& q = ps.q;
  const int64_t now = now_ms();
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
  if (!f.recipient.empty()) {
    auto addr = quarantine_address(f.recipient);
    if (!addr) return addr.failure();
    if (!ps.scope.sees(*addr)) return out_of_scope("recipient", *addr);
    ps.recipient = *addr;
    q.recipients = {ps.recipient};
  }
  if (!f.domain.empty()) {
    auto d = normalize_domain(f.domain);
    if (!d) return usage(d.error(), "domain");
    if (!ps.scope.covers_domain(*d)) return out_of_scope("domain", *d);
    ps.domain = *d;
  }
  // Narrow the index walk to what the principal may see; an empty query
  // would mean "everything", which only operators get.
  const QuarantineScope& scope_ = ps.scope;
  if (q.recipients.empty()) {
    for (const auto& addr : scope_.addresses())
      if (ps.domain.empty() || store::quarantine_domain_of(addr) == ps.domain) q.recipients.push_back(addr);
    if (!scope_.addresses().empty()) ps.nothing = q.recipients.empty();
    else if (!ps.domain.empty()) q.domains = {ps.domain};
    else if (!scope_.all()) q.domains.assign(scope_.domains().begin(), scope_.domains().end());
    if (!scope_.all() && q.recipients.empty() && q.domains.empty()) ps.nothing = true;
  }
  ps.needle = to_lower(f.search);
  q.text = ps.needle;
  return ps;
}

// Newest first: received time, then id, descending (the index's order backwards).
bool newer(const HeldMessage& x, const HeldMessage& y) {
  const store::Envelope &p = x.record.envelope, &q = y.record.envelope;
  return p.received_ms != q.received_ms ? p.received_ms > q.received_ms : p.id > q.id;
}

}  // namespace

Outcome<std::vector<HeldMessage>> list_quarantine(const Actor& a, const QuarantineFilter& f) {
  auto ps = prepare(a, f);
  if (!ps) return ps.failure();
  std::vector<HeldMessage> rows;
  for (unsigned shard : ps->nothing ? std::vector<unsigned>() : store::Spool::existing_shards(a.config.state_dir)) {
    auto spool = store::Spool::open(a.config.state_dir, shard);
    if (!spool) return unavailable(spool.error());
    auto records = store::quarantine_list(**spool, ps->q);
    if (!records) return unavailable(fmt::format("spool {}: {}", shard, records.error()));
    for (auto& r : *records) {
      HeldMessage h;
      if (ps->admit(r, h)) rows.push_back(std::move(h));
    }
  }
  std::sort(rows.begin(), rows.end(), [](const HeldMessage& x, const HeldMessage& y) { return newer(y, x); });
  return rows;
}

std::string quarantine_cursor(const HeldMessage& h) {
  return fmt::format("{}-{}", h.record.envelope.received_ms, h.record.envelope.id);
}

std::optional<store::QuarantinePosition> parse_quarantine_cursor(std::string_view cursor) {
  size_t dash = cursor.find('-');
  if (dash == 0 || dash == std::string_view::npos || dash > 18) return std::nullopt;
  store::QuarantinePosition p;
  for (char c : cursor.substr(0, dash)) {
    if (c < '0' || c > '9') return std::nullopt;
    p.received_ms = p.received_ms * 10 + (c - '0');
  }
  p.id = std::string(cursor.substr(dash + 1));
  if (!check_message_id(p.id)) return std::nullopt;
  return p;
}

Outcome<QuarantinePage> quarantine_page(const Actor& a, const QuarantineFilter& f, const QuarantinePageRequest& page) {
  size_t limit = kQuarantinePageDefault;
  if (!page.limit.empty()) {
    bool ok = page.limit.size() <= 4 && page.limit[0] != '0';
    size_t n = 0;
    for (char c : page.limit) {
      ok = ok && c >= '0' && c <= '9';
      n = n * 10 + static_cast<size_t>(c - '0');
    }
    if (!ok || n < 1 || n > kQuarantinePageMax)
      return usage(fmt::format("'{}' is not a page size (a whole number from 1 to {})", printable(page.limit),
                               kQuarantinePageMax),
                   "limit");
    limit = n;
  }
  std::optional<store::QuarantinePosition> before;
  if (!page.before.empty()) {
    before = parse_quarantine_cursor(page.before);
    if (!before)
      return usage(fmt::format("'{}' is not a quarantine page cursor (use a page's \"next\")", printable(page.before)),
                   "before");
  }
  auto ps = prepare(a, f);
  if (!ps) return ps.failure();
  // limit + 1 from each shard: the newest limit + 1 overall are among them,
  // and the one past the page says whether there is a next.
  QuarantinePage out;
  for (unsigned shard : ps->nothing ? std::vector<unsigned>() : store::Spool::existing_shards(a.config.state_dir)) {
    auto spool = store::Spool::open(a.config.state_dir, shard);
    if (!spool) return unavailable(spool.error());
    size_t taken = 0;
    auto walked = store::quarantine_walk_newest(**spool, ps->q, before, [&](store::QuarantineRecord& r) {
      HeldMessage h;
      if (ps->admit(r, h)) {
        out.rows.push_back(std::move(h));
        ++taken;
      }
      return taken <= limit;
    });
    if (!walked) return unavailable(fmt::format("spool {}: {}", shard, walked.error()));
  }
  std::sort(out.rows.begin(), out.rows.end(), newer);
  if (out.rows.size() > limit) {
    out.rows.resize(limit);
    out.next = quarantine_cursor(out.rows.back());
  }
  return out;
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
    auto entries = sender_allow_entries(a, h, *targets);
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
                     {{"queued_id", *queued}}, owner_of_recipients(a.store, *targets));
      !s)
    return unavailable(s.error());
  for (const auto& e : allow) {
    auto changed = a.store.add_list_entry(e);
    if (!changed) return unavailable(changed.error());
    out.allowed_in.push_back(e.scope);
    if (!*changed) continue;
    nlohmann::ordered_json entry{{"list", store::to_string(e.action)}, {"scope", e.scope},
                                 {"kind", store::to_string(e.kind)}, {"value", e.value}};
    auto scoped = a.store.domain(e.scope);
    AuditOwner owner = scoped && *scoped ? owner_of(**scoped) : AuditOwner{};
    if (auto s = audit(a.store, a.principal, "list.add", e.scope, nullptr, entry, owner); !s)
      return unavailable(s.error());
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
                     {{"id", in.id}, {"recipients", *targets}, {"learn_spam", in.learn_spam}}, nullptr,
                     owner_of_recipients(a.store, *targets));
      !s)
    return unavailable(s.error());
  return out;
}

}  // namespace mxguard::admin
