// `mxguard quarantine ...`: list, preview, release, delete and purge the
// messages held in the shards' spools, each within the principal's scope.
#include <sodium.h>

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <memory>

#include "console.hpp"
#include "mxguard/bayes/bayes.hpp"
#include "mxguard/core/strings.hpp"
#include "mxguard/scan/active.hpp"
#include "mxguard/scan/scanner.hpp"
#include "mxguard/store/quarantine.hpp"
#include "mxguard/store/spool.hpp"
#include "onboarding.hpp"
#include "output.hpp"
#include "quarantine_view.hpp"
#include "validate.hpp"

namespace mxguard::console {

namespace {

// Retention of a domain the config no longer has (the Domain default).
constexpr unsigned kDefaultQuarantineDays = 30;

struct ListOptions {
  std::string domain, recipient, since, until, search;
  bool json = false;
};

struct IdOptions {
  std::string id;
  std::string recipient;
  bool learn_spam = false;
  bool json = false;
};

struct PurgeOptions {
  std::string now;
  bool json = false;
};

struct Held {
  store::QuarantineRecord record;
  std::vector<std::string> visible;  // held recipients the principal may see
};

mime::Limits limits_for(const Config& cfg) {
  mime::Limits l;
  l.max_depth = cfg.scan.mime_max_depth;
  l.max_parts = cfg.scan.mime_max_parts;
  return l;
}

// An address as typed: local@domain, printable, no spaces; lower case.
Result<std::string> normalize_address(std::string_view typed) {
  std::string_view a = trim(typed);
  size_t at = a.rfind('@');
  bool ok = at != std::string_view::npos && at > 0 && at + 1 < a.size() && a.size() <= 320;
  for (char c : a) ok = ok && static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
  if (!ok) return Error{fmt::format("'{}' is not an address (local@domain)", printable(typed))};
  return to_lower(a);
}

// Opens the spool named by the id's shard suffix; null when that shard has
// no spool (opening it would create one).
Result<std::unique_ptr<store::Spool>> spool_for(const Context& ctx, std::string_view id) {
  unsigned shard = static_cast<unsigned>(store::shard_of_message_id(id));
  auto shards = store::Spool::existing_shards(ctx.config.state_dir);
  if (std::find(shards.begin(), shards.end(), shard) == shards.end()) return std::unique_ptr<store::Spool>();
  return store::Spool::open(ctx.config.state_dir, shard);
}

// A quarantine action as a tracking event, so `mxguard track --id` shows it
// on the message's path. The action is done already: a failure to record it
// is reported, not undone.
void track_action(store::Spool& spool, const store::QuarantineRecord& r, std::string_view decision,
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
    fmt::print(stderr, "mxguard: warning: the {} of {} is not in the tracking log: {}\n", decision, r.envelope.id,
               st.error());
}

// Missing messages and other tenants' messages get the same refusal for
// non-operators, so ids of other customers' mail never leak.
int no_such_message(const Context& ctx, std::string_view id) {
  if (is_operator(ctx.principal)) return usage_error(fmt::format("no such quarantined message: {}", id));
  return fail(kExitNotPermitted, not_permitted(fmt::format("quarantined message {}", id)));
}

// Finds a held message the principal may see; on failure the message is
// printed and the exit code returned.
int locate(const Context& ctx, const QuarantineScope& scope, const std::string& id,
           std::unique_ptr<store::Spool>& spool, Held& out) {
  if (auto s = check_message_id(id); !s) return usage_error(s.error());
  auto opened = spool_for(ctx, id);
  if (!opened) return runtime_error(opened.error());
  if (!*opened) return no_such_message(ctx, id);
  spool = std::move(*opened);
  auto r = store::quarantine_get(*spool, id);
  if (!r) return runtime_error(r.error());
  if (!*r) return no_such_message(ctx, id);
  out.visible = scope.visible((*r)->held());
  if (out.visible.empty()) return no_such_message(ctx, id);
  out.record = std::move(**r);
  return kExitOk;
}

// The recipients a release or delete acts on: --recipient (which must be
// held and visible), else every held recipient the principal may see.
int targets_for(const Held& h, const QuarantineScope& scope, const std::string& recipient,
                std::vector<std::string>& out) {
  if (recipient.empty()) {
    out = h.visible;
    return kExitOk;
  }
  auto a = normalize_address(recipient);
  if (!a) return usage_error(a.error());
  if (!scope.sees(*a)) return fail(kExitNotPermitted, not_permitted(fmt::format("recipient {}", *a)));
  auto it = std::find_if(h.visible.begin(), h.visible.end(), [&](const std::string& v) { return iequals(v, *a); });
  if (it == h.visible.end())
    return usage_error(fmt::format("{} is not held in quarantine for message {}", *a, h.record.envelope.id));
  out = {*it};
  return kExitOk;
}

// The same key `mxguard learn` uses for a message file (SHA-256 of its
// bytes), so learning a message both ways moves it instead of counting it twice.
std::string message_key(std::string_view data) {
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

// Trains the shared Bayes model with the client's message (without the
// header fields we added), tokenized exactly as the engine's scanner does.
Status learn(const Context& ctx, store::ConfigStore& store, std::string_view content, bool spam) {
  if (sodium_init() < 0) return Error{"libsodium did not initialise"};
  auto active = scan::load_active(store, scan::rules_dir_for(ctx.config.scan));
  if (!active) return Error{active.error()};
  auto model = bayes::Model::open(ctx.config.state_dir);
  if (!model) return Error{model.error()};
  scan::Scanner scanner(active->rules);
  scan::ScanOptions options;
  options.rules = false;
  options.dkim = false;
  options.limits = limits_for(ctx.config);
  scan::MessageScan ms(scanner, options);
  ms.feed(content);
  ms.finish();
  if (auto s = (*model)->learn(message_key(content), ms.tokens().hashes(), spam); !s)
    return Error{fmt::format("Bayes: {}", s.error())};
  return {};
}

Result<std::string> client_content(const store::Spool& spool, const store::QuarantineRecord& r) {
  auto data = store::quarantine_message(spool, r.envelope.id);
  if (!data) return Error{data.error()};
  if (!*data) return Error{fmt::format("quarantined message {} disappeared", r.envelope.id)};
  return (*data)->substr(r.content_offset);
}

std::string recipients_summary(const std::vector<std::string>& rcpts) {
  if (rcpts.empty()) return "";
  if (rcpts.size() == 1) return rcpts.front();
  return fmt::format("{} (+{})", rcpts.front(), rcpts.size() - 1);
}

bool search_matches(const Held& h, const std::string& needle) {
  const store::Envelope& e = h.record.envelope;
  auto has = [&](std::string_view s) { return to_lower(s).find(needle) != std::string::npos; };
  return has(e.sender) || has(e.subject) || has(e.message_id) ||
         std::any_of(h.visible.begin(), h.visible.end(), [&](const std::string& r) { return has(r); });
}

int run_list(const Context& ctx, const ListOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto scope = QuarantineScope::of(**store, ctx.principal);
  if (!scope) return runtime_error(scope.error());
  const int64_t now = now_ms();
  store::QuarantineQuery q;
  if (!o.since.empty()) {
    auto t = parse_time_arg(o.since, now);
    if (!t) return usage_error(fmt::format("--since: {}", t.error()));
    q.since_ms = *t;
  }
  if (!o.until.empty()) {
    auto t = parse_time_arg(o.until, now);
    if (!t) return usage_error(fmt::format("--until: {}", t.error()));
    q.until_ms = *t;
  }
  std::string recipient, domain;
  if (!o.recipient.empty()) {
    auto a = normalize_address(o.recipient);
    if (!a) return usage_error(a.error());
    if (!scope->sees(*a)) return fail(kExitNotPermitted, not_permitted(fmt::format("recipient {}", *a)));
    recipient = *a;
    q.recipients = {recipient};
  }
  if (!o.domain.empty()) {
    auto d = normalize_domain(o.domain);
    if (!d) return usage_error(d.error());
    if (!scope->covers_domain(*d)) return fail(kExitNotPermitted, not_permitted(fmt::format("domain {}", *d)));
    domain = *d;
  }
  // Narrow the index walk to what the principal may see; an empty query
  // would mean "everything", which only operators get.
  bool nothing = false;
  if (q.recipients.empty()) {
    for (const auto& a : scope->addresses())
      if (domain.empty() || store::quarantine_domain_of(a) == domain) q.recipients.push_back(a);
    if (!scope->addresses().empty()) nothing = q.recipients.empty();
    else if (!domain.empty()) q.domains = {domain};
    else if (!scope->all()) q.domains.assign(scope->domains().begin(), scope->domains().end());
    if (!scope->all() && q.recipients.empty() && q.domains.empty()) nothing = true;
  }

  const std::string needle = to_lower(o.search);
  std::vector<Held> rows;
  for (unsigned shard : nothing ? std::vector<unsigned>() : store::Spool::existing_shards(ctx.config.state_dir)) {
    auto spool = store::Spool::open(ctx.config.state_dir, shard);
    if (!spool) return runtime_error(spool.error());
    auto records = store::quarantine_list(**spool, q);
    if (!records) return runtime_error(fmt::format("spool {}: {}", shard, records.error()));
    for (auto& r : *records) {
      Held h;
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
  std::sort(rows.begin(), rows.end(), [](const Held& a, const Held& b) {
    const store::Envelope &x = a.record.envelope, &y = b.record.envelope;
    return x.received_ms != y.received_ms ? x.received_ms < y.received_ms : x.id < y.id;
  });

  if (o.json) {
    for (const auto& h : rows) print_json_line(quarantine_json(h.record, h.visible));
    return kExitOk;
  }
  Table table({"ID", "RECEIVED", "SCORE", "SENDER", "RECIPIENTS", "SUBJECT"});
  for (const auto& h : rows) {
    const store::Envelope& e = h.record.envelope;
    table.add_row({e.id, iso8601(e.received_ms), fmt::format("{:.2f}", e.score),
                   truncate(e.sender.empty() ? "<>" : e.sender, 40), truncate(recipients_summary(h.visible), 40),
                   truncate(e.subject, 50)});
  }
  if (table.rows() > 0) table.print();
  fmt::print("{} held\n", count_of(rows.size(), "message", "messages"));
  return kExitOk;
}

void print_details(const Held& h, const Preview& p) {
  const store::Envelope& e = h.record.envelope;
  auto field = [](std::string_view key, std::string_view value) {
    fmt::print("{:<12}{}\n", fmt::format("{}:", key), printable(value));
  };
  field("id", e.id);
  field("received", iso8601_ms(e.received_ms));
  field("score", fmt::format("{:.2f} ({})", e.score, e.action));
  std::string reasons;
  for (const auto& r : e.reasons) reasons += (reasons.empty() ? "" : " ") + r;
  field("reasons", reasons);
  field("sender", e.sender.empty() ? "<>" : e.sender);
  for (const auto& r : h.visible) field("recipient", r);
  field("client", fmt::format("{} (HELO {})", e.client_ip, e.helo));
  field("size", fmt::format("{} bytes", e.size));

  fmt::print("\nHeaders:\n");
  for (const auto& [name, value] : p.headers) {
    // Unfolding leaves the folding tabs; as spaces they read like the header did.
    std::string v = value;
    std::replace(v.begin(), v.end(), '\t', ' ');
    fmt::print("  {}: {}\n", printable(name), printable(v));
  }
  fmt::print("\nText{}:\n", p.text_from_html ? " (from HTML, markup removed)" : "");
  std::string text = terminal_safe(p.text);
  if (!text.empty() && text.back() != '\n') text += '\n';
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (p.truncated) fmt::print("[preview truncated]\n");
  fmt::print("\nAttachments (not opened): {}\n", p.attachments.size());
  for (const auto& a : p.attachments) {
    fmt::print("  {}  {}  {} bytes{}\n", printable(a.filename.empty() ? "(no name)" : a.filename),
               printable(a.content_type), a.size,
               a.detected_type.empty() || a.detected_type == a.content_type ? ""
                                                                             : " (looks like " + a.detected_type + ")");
    for (const auto& m : a.members) fmt::print("    {}\n", printable(m));
  }
}

int run_show(const Context& ctx, const IdOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto scope = QuarantineScope::of(**store, ctx.principal);
  if (!scope) return runtime_error(scope.error());
  std::unique_ptr<store::Spool> spool;
  Held h;
  if (int rc = locate(ctx, *scope, o.id, spool, h); rc != kExitOk) return rc;
  auto data = store::quarantine_message(*spool, o.id);
  if (!data) return runtime_error(data.error());
  if (!*data) return no_such_message(ctx, o.id);
  Preview p = make_preview(**data, limits_for(ctx.config));
  if (o.json) {
    nlohmann::ordered_json j = quarantine_json(h.record, h.visible);
    nlohmann::ordered_json preview = preview_json(p);
    for (auto& [k, v] : preview.items()) j[k] = v;
    print_json_line(j);
  } else {
    print_details(h, p);
  }
  return kExitOk;
}

int run_release(const Context& ctx, const IdOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto scope = QuarantineScope::of(**store, ctx.principal);
  if (!scope) return runtime_error(scope.error());
  std::unique_ptr<store::Spool> spool;
  Held h;
  if (int rc = locate(ctx, *scope, o.id, spool, h); rc != kExitOk) return rc;
  std::vector<std::string> targets;
  if (int rc = targets_for(h, *scope, o.recipient, targets); rc != kExitOk) return rc;
  auto content = client_content(*spool, h.record);
  if (!content) return runtime_error(content.error());
  // Ham first: learning is idempotent, so a release that then fails can
  // simply be repeated.
  if (auto s = learn(ctx, **store, *content, false); !s) return runtime_error(s.error());
  auto queued = store::quarantine_release(*spool, o.id, targets, now_ms());
  if (!queued) return runtime_error(queued.error());
  track_action(*spool, h.record, "released", targets,
               fmt::format("released by {}; queued for delivery as {}", ctx.principal.name, *queued), *queued);
  if (auto s = audit(**store, ctx.principal, "quarantine.release", o.id, {{"id", o.id}, {"recipients", targets}},
                     {{"queued_id", *queued}});
      !s)
    return runtime_error(s.error());
  if (o.json) {
    print_json_line({{"id", o.id}, {"queued_id", *queued}, {"recipients", targets}});
  } else {
    std::string to;
    for (const auto& t : targets) to += (to.empty() ? "" : ", ") + t;
    fmt::print("Released {} to {}: queued for delivery as {}.\n", o.id, printable(to), *queued);
  }
  return kExitOk;
}

// An operator can clear a record that no longer decodes (nothing else can
// read or release it). Returns -1 when the record is readable.
int delete_unreadable(const Context& ctx, store::ConfigStore& store, const std::string& id) {
  if (auto s = check_message_id(id); !s) return -1;
  auto spool = spool_for(ctx, id);
  if (!spool || !*spool) return -1;
  auto r = store::quarantine_get(**spool, id);
  if (r) return -1;
  auto gone = store::quarantine_delete(**spool, id, {});
  if (!gone) return runtime_error(gone.error());
  if (auto s = audit(store, ctx.principal, "quarantine.delete", id, {{"id", id}, {"unreadable", true}}, nullptr); !s)
    return runtime_error(s.error());
  fmt::print("Deleted unreadable quarantined message {}.\n", id);
  return kExitOk;
}

int run_delete(const Context& ctx, const IdOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto scope = QuarantineScope::of(**store, ctx.principal);
  if (!scope) return runtime_error(scope.error());
  if (is_operator(ctx.principal) && o.recipient.empty() && !o.learn_spam)
    if (int rc = delete_unreadable(ctx, **store, o.id); rc >= 0) return rc;
  std::unique_ptr<store::Spool> spool;
  Held h;
  if (int rc = locate(ctx, *scope, o.id, spool, h); rc != kExitOk) return rc;
  std::vector<std::string> targets;
  if (int rc = targets_for(h, *scope, o.recipient, targets); rc != kExitOk) return rc;
  if (o.learn_spam) {
    auto content = client_content(*spool, h.record);
    if (!content) return runtime_error(content.error());
    if (auto s = learn(ctx, **store, *content, true); !s) return runtime_error(s.error());
  }
  auto gone = store::quarantine_delete(*spool, o.id, targets);
  if (!gone) return runtime_error(gone.error());
  track_action(*spool, h.record, "deleted", targets,
               fmt::format("deleted by {}{}", ctx.principal.name, o.learn_spam ? " and learned as spam" : ""), {});
  if (auto s = audit(**store, ctx.principal, "quarantine.delete", o.id,
                     {{"id", o.id}, {"recipients", targets}, {"learn_spam", o.learn_spam}}, nullptr);
      !s)
    return runtime_error(s.error());
  if (o.json) {
    print_json_line({{"id", o.id}, {"recipients", targets}, {"learned_spam", o.learn_spam}});
  } else {
    std::string to;
    for (const auto& t : targets) to += (to.empty() ? "" : ", ") + t;
    fmt::print("Deleted {} for {}{}.\n", o.id, printable(to), o.learn_spam ? " and learned it as spam" : "");
  }
  return kExitOk;
}

int run_purge(const Context& ctx, const PurgeOptions& o) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("purging the quarantine is for operators"));
  int64_t now = now_ms();
  if (!o.now.empty()) {
    auto t = parse_time_arg(o.now, now);
    if (!t) return usage_error(fmt::format("--now: {}", t.error()));
    now = *t;
  }
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  std::map<std::string, unsigned, std::less<>> days;
  std::string lookup_error;
  auto days_for = [&](std::string_view domain) -> unsigned {
    if (auto it = days.find(domain); it != days.end()) return it->second;
    auto d = (*store)->domain(domain);
    unsigned v = kDefaultQuarantineDays;
    if (!d) {
      // Unknown retention: keep the mail rather than guess too short.
      lookup_error = d.error();
      v = std::numeric_limits<unsigned>::max();
    } else if (*d) {
      v = (*d)->quarantine_days;
    }
    days.emplace(std::string(domain), v);
    return v;
  };
  size_t purged = 0;
  for (unsigned shard : store::Spool::existing_shards(ctx.config.state_dir)) {
    auto spool = store::Spool::open(ctx.config.state_dir, shard);
    if (!spool) return runtime_error(spool.error());
    auto n = store::quarantine_purge(**spool, now, days_for);
    if (!n) return runtime_error(fmt::format("spool {}: {}", shard, n.error()));
    purged += *n;
  }
  if (purged > 0)
    if (auto s = audit(**store, ctx.principal, "quarantine.purge", "quarantine", nullptr,
                       {{"now", iso8601_ms(now)}, {"purged", purged}});
        !s)
      return runtime_error(s.error());
  if (!lookup_error.empty()) return runtime_error(fmt::format("domain lookup failed, some mail was kept: {}", lookup_error));
  if (o.json) print_json_line({{"purged", purged}, {"now", iso8601_ms(now)}});
  else fmt::print("Purged {} past their domain's retention.\n", count_of(purged, "quarantined message", "quarantined messages"));
  return kExitOk;
}

}  // namespace

void add_quarantine_commands(CLI::App& root, Commands& out) {
  CLI::App* group = root.add_subcommand("quarantine", "Held messages: list, preview, release, delete, purge");
  {
    auto o = std::make_shared<ListOptions>();
    CLI::App* cmd = group->add_subcommand("list", "List held messages you may see, oldest first");
    cmd->add_option("--domain", o->domain, "Only recipients in this domain");
    cmd->add_option("--recipient", o->recipient, "Only this recipient");
    cmd->add_option("--since", o->since, "Received at or after (2026-05-01, 2026-05-01T12:00:00Z, 7d, @UNIX)");
    cmd->add_option("--until", o->until, "Received before (same forms as --since)");
    cmd->add_option("--search", o->search, "Text in the sender, recipients, subject or Message-ID (any case)");
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_list(ctx, *o); }});
  }
  {
    auto o = std::make_shared<IdOptions>();
    CLI::App* cmd = group->add_subcommand(
        "show", "Safe preview: header fields and text only (HTML stripped), attachments listed, not opened");
    cmd->add_option("ID", o->id, "Message id, e.g. 0190f3c2a1b2c.s1")->required();
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_show(ctx, *o); }});
  }
  {
    auto o = std::make_shared<IdOptions>();
    CLI::App* cmd = group->add_subcommand("release", "Queue a held message for delivery and learn it as ham");
    cmd->add_option("ID", o->id, "Message id")->required();
    cmd->add_option("--recipient", o->recipient, "Release to this recipient only (default: every one you may see)");
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_release(ctx, *o); }});
  }
  {
    auto o = std::make_shared<IdOptions>();
    CLI::App* cmd = group->add_subcommand("delete", "Delete a held message");
    cmd->add_option("ID", o->id, "Message id")->required();
    cmd->add_option("--recipient", o->recipient, "Delete only this recipient's copy (default: every one you may see)");
    cmd->add_flag("--learn-spam", o->learn_spam, "Also train the Bayes model with it as spam");
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_delete(ctx, *o); }});
  }
  {
    auto o = std::make_shared<PurgeOptions>();
    CLI::App* cmd = group->add_subcommand("purge", "Delete held mail past its domain's quarantine_days (operators)");
    cmd->add_option("--now", o->now, "Purge as if it were this time (e.g. +31d, 2026-06-01)");
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_purge(ctx, *o); }});
  }
}

}  // namespace mxguard::console
