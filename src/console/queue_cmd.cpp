// `mxguard queue ...`: messages waiting for delivery in the shards' spools,
// each principal seeing only the pending recipients of their own domains.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>

#include "console.hpp"
#include "mxguard/store/spool.hpp"
#include "onboarding.hpp"
#include "output.hpp"
#include "queue_view.hpp"
#include "validate.hpp"

namespace mxguard::console {

namespace {

// Continuation rows per message in the list table; the rest is counted.
constexpr size_t kMaxRecipientRows = 5;
constexpr size_t kErrorColumnWidth = 80;  // the last column: room for "host: code text"

struct ListOptions {
  bool json = false;
  std::string domain, state;
};

struct IdOptions {
  std::string id;
  bool json = false;
  bool raw = false;
};

struct RetryOptions {
  std::string id;
  bool all = false;
  std::string domain, state;
  bool json = false;
};

struct QueuedMessage {
  unsigned shard = 0;
  store::Envelope envelope;
  store::QueueEntry entry;
  QueueView view;
};

// The config store (for scope and audit) and what the principal may see.
struct Access {
  std::unique_ptr<store::ConfigStore> store;
  QueueScope scope;
};

// On failure the message is printed and `exit_code` set.
std::optional<Access> open_access(const Context& ctx, int& exit_code) {
  auto store = open_config_store(ctx);
  if (!store) {
    exit_code = runtime_error(store.error());
    return std::nullopt;
  }
  if (ctx.principal.role == store::Role::kUser) {
    exit_code = fail(kExitNotPermitted, not_permitted("the mail queue is for operators, customer admins and postmasters"));
    return std::nullopt;
  }
  auto scope = QueueScope::of(**store, ctx.principal);
  if (!scope) {
    exit_code = runtime_error(scope.error());
    return std::nullopt;
  }
  return Access{std::move(*store), std::move(*scope)};
}

std::string sender_text(const store::Envelope& e) { return e.sender.empty() ? "<>" : e.sender; }

nlohmann::ordered_json pending_json(const std::vector<store::QueueRecipient>& pending) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& r : pending)
    out.push_back({{"recipient", r.address}, {"last_code", r.last_code}, {"last_error", r.last_error}});
  return out;
}

nlohmann::ordered_json message_json(const QueuedMessage& m, const QueueScope& scope) {
  const store::Envelope& e = m.envelope;
  // "*" marks the global allow list; per-recipient marks of other tenants stay hidden.
  std::vector<std::string> allowlisted;
  for (const auto& a : e.allowlisted)
    if (a == "*" || scope.sees(a)) allowlisted.push_back(a);
  return {{"id", e.id},
          {"shard", m.shard},
          {"state", queue_state_name(m.entry.state)},
          {"attempts", m.entry.attempts},
          {"next_attempt", iso8601_ms(m.entry.next_attempt_ms)},
          {"sender", e.sender},
          {"recipients", m.view.recipients},
          {"size", e.size},
          {"subject", e.subject},
          {"message_id", e.message_id},
          {"received", iso8601_ms(e.received_ms)},
          {"client_ip", e.client_ip},
          {"client_port", e.client_port},
          {"helo", e.helo},
          {"tls", e.tls},
          {"allowlisted", allowlisted},
          {"smtputf8", e.smtputf8},
          {"body_8bit", e.body_8bit},
          {"pending", pending_json(m.view.pending)},
          {"domains", pending_domains(m.view.pending)},
          {"bounce_requested", m.entry.bounce_requested}};
}

// Copies the queued messages the scope sees out of all spools. Copying
// (instead of printing from inside for_each) keeps each read transaction
// short even when stdout is a slow pipe: a long-lived reader would stop the
// shard's writer reusing pages.
Result<std::vector<QueuedMessage>> collect_queue(const std::string& state_dir, const QueueScope& scope,
                                                 const QueueFilter& filter) {
  std::vector<QueuedMessage> out;
  for (unsigned shard : store::Spool::existing_shards(state_dir)) {
    auto spool = store::Spool::open(state_dir, shard);
    if (!spool) return Error{spool.error()};
    auto s = (*spool)->for_each([&](const store::Envelope& e, const store::QueueEntry& q) {
      QueueView v = view_of(scope, e, q);
      if (!scope.all() && v.pending.empty()) return;
      if (!matches(filter, q.state, v.pending)) return;
      out.push_back({shard, e, q, std::move(v)});
    });
    if (!s) return Error{fmt::format("spool {}: {}", shard, s.error())};
  }
  // Oldest first across shards, as an operator reads a queue.
  std::sort(out.begin(), out.end(), [](const QueuedMessage& a, const QueuedMessage& b) {
    if (a.envelope.received_ms != b.envelope.received_ms) return a.envelope.received_ms < b.envelope.received_ms;
    return a.envelope.id < b.envelope.id;
  });
  return out;
}

// Checks --domain and --state; a non-operator may only name a domain of theirs.
int make_filter(const QueueScope& scope, const std::string& domain, const std::string& state, QueueFilter& out) {
  if (!domain.empty()) {
    auto d = normalize_domain(domain);
    if (!d) return usage_error(d.error());
    if (!scope.covers_domain(*d)) return fail(kExitNotPermitted, not_permitted(fmt::format("domain {}", *d)));
    out.domain = std::move(*d);
  }
  if (!state.empty()) {
    auto s = parse_queue_state(state);
    if (!s) return usage_error(s.error());
    out.state = *s;
  }
  return kExitOk;
}

std::string state_summary(const store::QueueEntry& q) {
  std::string s(queue_state_name(q.state));
  if (q.attempts > 0) s += fmt::format("({})", q.attempts);
  if (q.bounce_requested) s += ",bounce";
  return s;
}

// One row per pending recipient (the message's columns on the first), with
// the recipient's last error when the message was deferred.
void print_queue_table(const std::vector<QueuedMessage>& messages) {
  Table table({"ID", "RECEIVED", "SIZE", "STATE", "SENDER", "PENDING", "LAST ERROR"});
  uint64_t bytes = 0;
  for (const auto& m : messages) {
    const store::Envelope& e = m.envelope;
    bytes += e.size;
    const auto& pending = m.view.pending;
    bool deferred = m.entry.state == store::QueueState::kDeferred;
    std::vector<std::string> row = {e.id, iso8601(e.received_ms), std::to_string(e.size), state_summary(m.entry),
                                    truncate(sender_text(e), 40), "", ""};
    size_t shown = std::min(pending.size(), kMaxRecipientRows);
    for (size_t i = 0; i < shown; ++i) {
      if (i > 0) row.assign(row.size(), "");
      row[5] = truncate(pending[i].address, 40);
      if (deferred) row[6] = truncate(pending[i].last_error, kErrorColumnWidth);
      table.add_row(row);
    }
    if (shown == 0) table.add_row(row);
    if (pending.size() > shown) table.add_row({"", "", "", "", "", fmt::format("(+{} more)", pending.size() - shown), ""});
  }
  if (!messages.empty()) table.print();
  fmt::print("{}, {} bytes\n", count_of(messages.size(), "message", "messages"), bytes);
}

int run_list(const Context& ctx, const ListOptions& o) {
  int rc = kExitOk;
  auto access = open_access(ctx, rc);
  if (!access) return rc;
  QueueFilter filter;
  if (rc = make_filter(access->scope, o.domain, o.state, filter); rc != kExitOk) return rc;
  auto messages = collect_queue(ctx.config.state_dir, access->scope, filter);
  if (!messages) return runtime_error(messages.error());
  if (!o.json) {
    print_queue_table(*messages);
    return kExitOk;
  }
  for (const auto& m : *messages) print_json_line(message_json(m, access->scope));
  return kExitOk;
}

// Opens the spool that holds `id`, named by the id's shard suffix. A shard
// that has no spool means no such message; opening it would create one.
Result<std::unique_ptr<store::Spool>> spool_for(const Context& ctx, std::string_view id) {
  unsigned shard = static_cast<unsigned>(store::shard_of_message_id(id));
  auto shards = store::Spool::existing_shards(ctx.config.state_dir);
  if (std::find(shards.begin(), shards.end(), shard) == shards.end())
    return std::unique_ptr<store::Spool>();
  return store::Spool::open(ctx.config.state_dir, shard);
}

// Missing messages and other tenants' messages get the same refusal for
// non-operators, so ids of other customers' mail never leak.
int no_such_message(const QueueScope& scope, std::string_view id) {
  if (scope.all()) return usage_error(fmt::format("no such message: {}", id));
  return fail(kExitNotPermitted, not_permitted(fmt::format("queued message {}", id)));
}

// Finds a queued message the scope sees; on failure the message is printed
// and the exit code returned.
int locate(const Context& ctx, const QueueScope& scope, const std::string& id, std::unique_ptr<store::Spool>& spool,
           QueuedMessage& out) {
  if (auto s = check_message_id(id); !s) return usage_error(s.error());
  auto opened = spool_for(ctx, id);
  if (!opened) return runtime_error(opened.error());
  if (!*opened) return no_such_message(scope, id);
  spool = std::move(*opened);
  auto env = spool->envelope(id);
  if (!env) return runtime_error(env.error());
  auto entry = spool->queue_entry(id);
  if (!entry) return runtime_error(entry.error());
  if (!*env || !*entry) return no_such_message(scope, id);
  QueueView view = view_of(scope, **env, **entry);
  if (!scope.all() && view.pending.empty()) return no_such_message(scope, id);
  out = {static_cast<unsigned>(store::shard_of_message_id(id)), std::move(**env), **entry, std::move(view)};
  return kExitOk;
}

// A tenant may not delay or destroy another tenant's copy of a message.
int refuse_shared(const QueueScope& scope, const QueuedMessage& m) {
  if (scope.all() || !m.view.shared) return kExitOk;
  return fail(kExitNotPermitted,
              not_permitted(fmt::format("message {} also has recipients outside your domains; ask an operator",
                                        m.envelope.id)));
}

void print_message_details(const QueuedMessage& m) {
  const store::Envelope& e = m.envelope;
  auto field = [](std::string_view key, std::string_view value) {
    fmt::print("{:<14}{}\n", fmt::format("{}:", key), printable(value));
  };
  field("id", e.id);
  field("shard", std::to_string(m.shard));
  field("state", queue_state_name(m.entry.state));
  field("attempts", std::to_string(m.entry.attempts));
  field("next attempt", iso8601_ms(m.entry.next_attempt_ms));
  if (m.entry.bounce_requested) field("bounce", "requested: the engine returns it to the sender");
  field("received", iso8601_ms(e.received_ms));
  field("client", fmt::format("{} port {} (HELO {})", e.client_ip, e.client_port, e.helo));
  field("tls", e.tls.empty() ? "none" : e.tls);
  field("size", fmt::format("{} bytes", e.size));
  field("sender", sender_text(e));
  for (const auto& r : m.view.recipients) field("recipient", r);
  field("message-id", e.message_id);
  field("subject", e.subject);
  for (const auto& r : m.view.pending) {
    field("pending", r.address);
    field("  last error", r.last_error.empty() ? "(no attempt yet)" : r.last_error);
  }
}

// Writes the stored bytes unchanged: no newline conversion, no escaping.
int write_raw(const store::Spool& spool, const std::string& id) {
  auto data = spool.read_message(id);
  if (!data) return runtime_error(data.error());
  if (!*data) return usage_error(fmt::format("no such message: {}", id));
  const std::string& bytes = **data;
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() || std::fflush(stdout) != 0)
    return runtime_error("cannot write the message to standard output");
  return kExitOk;
}

int run_show(const Context& ctx, const IdOptions& o) {
  int rc = kExitOk;
  auto access = open_access(ctx, rc);
  if (!access) return rc;
  std::unique_ptr<store::Spool> spool;
  QueuedMessage m;
  if (rc = locate(ctx, access->scope, o.id, spool, m); rc != kExitOk) return rc;
  if (o.raw) return write_raw(*spool, o.id);
  if (o.json) print_json_line(message_json(m, access->scope));
  else print_message_details(m);
  return kExitOk;
}

int run_delete(const Context& ctx, const IdOptions& o) {
  int rc = kExitOk;
  auto access = open_access(ctx, rc);
  if (!access) return rc;
  std::unique_ptr<store::Spool> spool;
  QueuedMessage m;
  if (rc = locate(ctx, access->scope, o.id, spool, m); rc != kExitOk) return rc;
  if (rc = refuse_shared(access->scope, m); rc != kExitOk) return rc;
  auto removed = spool->remove(o.id);
  if (!removed) return runtime_error(removed.error());
  if (!*removed) return no_such_message(access->scope, o.id);
  if (auto s = audit(*access->store, ctx.principal, "queue.delete", o.id, {{"id", o.id}}, nullptr); !s)
    return runtime_error(s.error());
  if (o.json) print_json_line({{"id", o.id}, {"deleted", true}});
  else fmt::print("Deleted message {}.\n", o.id);
  return kExitOk;
}

// Moves one message's next attempt to now (and marks it for return to its
// sender when `bounce`), with its audit entry. Returns false when the
// message left the queue meanwhile (delivered, or deleted).
Result<bool> reschedule(store::Spool& spool, store::ConfigStore& config, const Principal& p, const QueuedMessage& m,
                        bool bounce, int64_t now) {
  auto moved = spool.reschedule(m.envelope.id, now, bounce);
  if (!moved) return Error{moved.error()};
  if (!*moved) return false;
  nlohmann::ordered_json before = {{"next_attempt", iso8601_ms(m.entry.next_attempt_ms)}};
  nlohmann::ordered_json after = {{"next_attempt", iso8601_ms(now)}};
  if (bounce) after["bounce"] = true;
  if (auto s = audit(config, p, bounce ? "queue.bounce" : "queue.retry", m.envelope.id, before, after); !s)
    return Error{s.error()};
  return true;
}

// What `retry --json` and `bounce --json` print: the queue entry as rescheduled.
void print_rescheduled(const QueuedMessage& m, int64_t now, bool bounce) {
  nlohmann::ordered_json j = {{"id", m.envelope.id}, {"state", queue_state_name(m.entry.state)},
                              {"next_attempt", iso8601_ms(now)}};
  if (bounce) {
    j["bounce"] = true;
    j["sender"] = m.envelope.sender;
  }
  print_json_line(j);
}

int run_retry_one(const Context& ctx, Access& access, const std::string& id, bool json) {
  std::unique_ptr<store::Spool> spool;
  QueuedMessage m;
  if (int rc = locate(ctx, access.scope, id, spool, m); rc != kExitOk) return rc;
  if (int rc = refuse_shared(access.scope, m); rc != kExitOk) return rc;
  int64_t now = now_ms();
  auto done = reschedule(*spool, *access.store, ctx.principal, m, false, now);
  if (!done) return runtime_error(done.error());
  if (!*done) return no_such_message(access.scope, id);
  if (json) print_rescheduled(m, now, false);
  else fmt::print("Message {} will be retried now.\n", id);
  return kExitOk;
}

// `retry --all`: every message the filters select. Messages shared with
// other tenants are skipped for non-operators (and counted), not refused
// wholesale, so one shared message does not block a tenant's own retries.
int run_retry_all(const Context& ctx, Access& access, const QueueFilter& filter, bool json) {
  auto messages = collect_queue(ctx.config.state_dir, access.scope, filter);
  if (!messages) return runtime_error(messages.error());
  size_t retried = 0, skipped = 0;
  // One handle per shard: LMDB forbids opening an environment twice in a process.
  std::map<unsigned, std::unique_ptr<store::Spool>> spools;
  for (const auto& m : *messages) {
    if (!access.scope.all() && m.view.shared) {
      ++skipped;
      continue;
    }
    std::unique_ptr<store::Spool>& spool = spools[m.shard];
    if (!spool) {
      auto opened = store::Spool::open(ctx.config.state_dir, m.shard);
      if (!opened) return runtime_error(opened.error());
      spool = std::move(*opened);
    }
    int64_t now = now_ms();
    auto done = reschedule(*spool, *access.store, ctx.principal, m, false, now);
    if (!done) return runtime_error(fmt::format("{} ({} retried before the error)", done.error(), retried));
    if (!*done) continue;
    ++retried;
    if (json) print_rescheduled(m, now, false);
  }
  if (json) return kExitOk;
  std::string note = skipped == 0 ? "" : fmt::format(" ({} skipped: they also have recipients outside your domains)",
                                                     skipped);
  fmt::print("{} will be retried now.{}\n", count_of(retried, "message", "messages"), note);
  return kExitOk;
}

int run_retry(const Context& ctx, const RetryOptions& o) {
  int rc = kExitOk;
  auto access = open_access(ctx, rc);
  if (!access) return rc;
  if (o.id.empty() && !o.all) return usage_error("give a message id or --all");
  if (!o.all) return run_retry_one(ctx, *access, o.id, o.json);
  QueueFilter filter;
  if (rc = make_filter(access->scope, o.domain, o.state, filter); rc != kExitOk) return rc;
  return run_retry_all(ctx, *access, filter, o.json);
}

int run_bounce(const Context& ctx, const IdOptions& o) {
  int rc = kExitOk;
  auto access = open_access(ctx, rc);
  if (!access) return rc;
  std::unique_ptr<store::Spool> spool;
  QueuedMessage m;
  if (rc = locate(ctx, access->scope, o.id, spool, m); rc != kExitOk) return rc;
  if (rc = refuse_shared(access->scope, m); rc != kExitOk) return rc;
  int64_t now = now_ms();
  auto done = reschedule(*spool, *access->store, ctx.principal, m, true, now);
  if (!done) return runtime_error(done.error());
  if (!*done) return no_such_message(access->scope, o.id);
  if (o.json) {
    print_rescheduled(m, now, true);
    return kExitOk;
  }
  // A message with the null sender (itself a bounce) has nobody to return it
  // to: the engine drops it, as RFC 5321 section 4.5.5 requires.
  if (m.envelope.sender.empty())
    fmt::print("Message {} has no sender to return it to (null sender); it will be dropped.\n", o.id);
  else
    fmt::print("Message {} will be returned to {} with a delivery status notification.\n", o.id,
               printable(m.envelope.sender));
  return kExitOk;
}

void add_list_command(CLI::App& group, Commands& out) {
  auto o = std::make_shared<ListOptions>();
  CLI::App* cmd = group.add_subcommand(
      "list", "List queued messages with their pending recipients and, when deferred, each one's last error");
  cmd->add_option("--domain", o->domain, "Only messages with a pending recipient in this domain");
  cmd->add_option("--state", o->state, "Only messages in this state: queued (not tried yet) or deferred");
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_list(ctx, *o); }});
}

void add_show_command(CLI::App& group, Commands& out) {
  auto o = std::make_shared<IdOptions>();
  CLI::App* cmd = group.add_subcommand(
      "show", "Show a queued message's envelope and each pending recipient's last error, or its bytes with --raw");
  cmd->add_option("ID", o->id, "Message id, e.g. 0190f3c2a1b2c3.s1")->required();
  CLI::Option* json = cmd->add_flag("--json", o->json, "Print the envelope as a JSON object");
  cmd->add_flag("--raw", o->raw, "Write the stored message bytes exactly as received")->excludes(json);
  out.push_back({cmd, [o](const Context& ctx) { return run_show(ctx, *o); }});
}

void add_retry_command(CLI::App& group, Commands& out) {
  auto o = std::make_shared<RetryOptions>();
  CLI::App* cmd = group.add_subcommand("retry", "Try a deferred message again now instead of at its next attempt");
  CLI::Option* id = cmd->add_option("ID", o->id, "Message id");
  CLI::Option* all = cmd->add_flag("--all", o->all, "Every queued message you may see (narrow with --domain, --state)")
                         ->excludes(id);
  cmd->add_option("--domain", o->domain, "With --all: only messages with a pending recipient in this domain")
      ->needs(all);
  cmd->add_option("--state", o->state, "With --all: only messages in this state (queued or deferred)")->needs(all);
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_retry(ctx, *o); }});
}

void add_bounce_command(CLI::App& group, Commands& out) {
  auto o = std::make_shared<IdOptions>();
  CLI::App* cmd = group.add_subcommand(
      "bounce", "Give up on a queued message: the engine returns it to its sender with a DSN and removes it");
  cmd->add_option("ID", o->id, "Message id")->required();
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_bounce(ctx, *o); }});
}

void add_delete_command(CLI::App& group, Commands& out) {
  auto o = std::make_shared<IdOptions>();
  CLI::App* cmd = group.add_subcommand("delete", "Delete a queued message without delivering it or telling the sender");
  cmd->add_option("ID", o->id, "Message id")->required();
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_delete(ctx, *o); }});
}

}  // namespace

void add_queue_commands(CLI::App& root, Commands& out) {
  CLI::App* group = root.add_subcommand(
      "queue", "Inspect and manage the delivery queue (customer admins and postmasters: their domains' recipients)");
  add_list_command(*group, out);
  add_show_command(*group, out);
  add_retry_command(*group, out);
  add_bounce_command(*group, out);
  add_delete_command(*group, out);
}

}  // namespace mxguard::console
