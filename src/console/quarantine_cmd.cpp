// `mxguard quarantine ...`: list, preview, release, delete and purge the
// messages held in the shards' spools, each within the principal's scope.
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <memory>

#include "console.hpp"
#include "mxguard/admin/quarantine.hpp"
#include "mxguard/core/strings.hpp"
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

// A failure as the console words it: the time options are named as typed.
int fail_list(const admin::Failure& f) {
  if (f.field == "since" || f.field == "until") return fail(exit_code_for(f), fmt::format("--{}: {}", f.field, f.message));
  return fail(f);
}

std::string recipients_summary(const std::vector<std::string>& rcpts) {
  if (rcpts.empty()) return "";
  if (rcpts.size() == 1) return rcpts.front();
  return fmt::format("{} (+{})", rcpts.front(), rcpts.size() - 1);
}

void warn(std::string_view warning) {
  if (!warning.empty()) fmt::print(stderr, "mxguard: warning: {}\n", warning);
}

int run_list(const Context& ctx, const ListOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto rows = admin::list_quarantine(actor(ctx, **store), {o.domain, o.recipient, o.search, o.since, o.until});
  if (!rows) return fail_list(rows.failure());
  if (o.json) {
    for (const auto& h : *rows) print_json_line(quarantine_json(h.record, h.visible));
    return kExitOk;
  }
  Table table({"ID", "RECEIVED", "SCORE", "SENDER", "RECIPIENTS", "SUBJECT"});
  for (const auto& h : *rows) {
    const store::Envelope& e = h.record.envelope;
    table.add_row({e.id, iso8601(e.received_ms), fmt::format("{:.2f}", e.score),
                   truncate(e.sender.empty() ? "<>" : e.sender, 40), truncate(recipients_summary(h.visible), 40),
                   truncate(e.subject, 50)});
  }
  if (table.rows() > 0) table.print();
  fmt::print("{} held\n", count_of(rows->size(), "message", "messages"));
  return kExitOk;
}

void print_details(const admin::HeldMessage& h, const Preview& p) {
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
  auto m = admin::show_quarantined(actor(ctx, **store), o.id);
  if (!m) return fail(m.failure());
  if (o.json) print_json_line(admin::shown_json(*m));
  else print_details(m->held, m->preview);
  return kExitOk;
}

admin::QuarantineAction action_of(const IdOptions& o) {
  admin::QuarantineAction in;
  in.id = o.id;
  if (!o.recipient.empty()) in.recipients = {o.recipient};
  in.learn_spam = o.learn_spam;
  return in;
}

std::string joined(const std::vector<std::string>& v) {
  std::string to;
  for (const auto& t : v) to += (to.empty() ? "" : ", ") + t;
  return to;
}

int run_release(const Context& ctx, const IdOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto r = admin::release_quarantined(actor(ctx, **store), action_of(o));
  if (!r) return fail(r.failure());
  warn(r->warning);
  if (o.json) print_json_line({{"id", o.id}, {"queued_id", r->queued_id}, {"recipients", r->recipients}});
  else fmt::print("Released {} to {}: queued for delivery as {}.\n", o.id, printable(joined(r->recipients)), r->queued_id);
  return kExitOk;
}

int run_delete(const Context& ctx, const IdOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto d = admin::delete_quarantined(actor(ctx, **store), action_of(o));
  if (!d) return fail(d.failure());
  if (d->unreadable) {
    fmt::print("Deleted unreadable quarantined message {}.\n", o.id);
    return kExitOk;
  }
  warn(d->warning);
  if (o.json) print_json_line({{"id", o.id}, {"recipients", d->recipients}, {"learned_spam", d->learned_spam}});
  else fmt::print("Deleted {} for {}{}.\n", o.id, printable(joined(d->recipients)), o.learn_spam ? " and learned it as spam" : "");
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
