// `mxguard queue ...`: messages waiting for delivery in the shards' spools.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "console.hpp"
#include "mxguard/store/spool.hpp"
#include "output.hpp"
#include "validate.hpp"

namespace mxguard::console {

namespace {

struct ListOptions {
  bool json = false;
};

struct IdOptions {
  std::string id;
  bool json = false;
  bool raw = false;
};

struct QueuedMessage {
  unsigned shard;
  store::Envelope envelope;
  store::QueueEntry entry;
};

std::string_view state_name(store::QueueState s) {
  return s == store::QueueState::kDeferred ? "deferred" : "queued";
}

std::string sender_text(const store::Envelope& e) { return e.sender.empty() ? "<>" : e.sender; }

nlohmann::ordered_json message_json(const QueuedMessage& m) {
  const store::Envelope& e = m.envelope;
  return {{"id", e.id},
          {"shard", m.shard},
          {"state", state_name(m.entry.state)},
          {"attempts", m.entry.attempts},
          {"next_attempt", iso8601_ms(m.entry.next_attempt_ms)},
          {"sender", e.sender},
          {"recipients", e.recipients},
          {"size", e.size},
          {"subject", e.subject},
          {"message_id", e.message_id},
          {"received", iso8601_ms(e.received_ms)},
          {"client_ip", e.client_ip},
          {"client_port", e.client_port},
          {"helo", e.helo},
          {"tls", e.tls},
          {"allowlisted", e.allowlisted},
          {"smtputf8", e.smtputf8},
          {"body_8bit", e.body_8bit}};
}

// Copies every queued message out of all spools. Copying (instead of printing
// from inside for_each) keeps each read transaction short even when stdout is
// a slow pipe: a long-lived reader would stop the shard's writer reusing pages.
Result<std::vector<QueuedMessage>> collect_queue(const std::string& state_dir) {
  std::vector<QueuedMessage> out;
  for (unsigned shard : store::Spool::existing_shards(state_dir)) {
    auto spool = store::Spool::open(state_dir, shard);
    if (!spool) return Error{spool.error()};
    auto s = (*spool)->for_each([&](const store::Envelope& e, const store::QueueEntry& q) {
      out.push_back({shard, e, q});
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

std::string recipients_summary(const std::vector<std::string>& rcpts) {
  if (rcpts.empty()) return "";
  if (rcpts.size() == 1) return rcpts.front();
  return fmt::format("{} (+{})", rcpts.front(), rcpts.size() - 1);
}

std::string state_summary(const store::QueueEntry& q) {
  if (q.attempts == 0) return std::string(state_name(q.state));
  return fmt::format("{}({})", state_name(q.state), q.attempts);
}

void print_queue_table(const std::vector<QueuedMessage>& messages) {
  Table table({"ID", "RECEIVED", "SIZE", "STATE", "SENDER", "RECIPIENTS", "SUBJECT"});
  uint64_t bytes = 0;
  for (const auto& m : messages) {
    const store::Envelope& e = m.envelope;
    bytes += e.size;
    table.add_row({e.id, iso8601(e.received_ms), std::to_string(e.size), state_summary(m.entry),
                   truncate(sender_text(e), 40), truncate(recipients_summary(e.recipients), 40),
                   truncate(e.subject, 50)});
  }
  if (!messages.empty()) table.print();
  fmt::print("{}, {} bytes\n", count_of(messages.size(), "message", "messages"), bytes);
}

int run_list(const Context& ctx, const ListOptions& o) {
  // Per-domain queue views for customer roles come with the delivery issue.
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("the mail queue is for operators"));
  auto messages = collect_queue(ctx.config.state_dir);
  if (!messages) return runtime_error(messages.error());
  if (!o.json) {
    print_queue_table(*messages);
    return kExitOk;
  }
  for (const auto& m : *messages) print_json_line(message_json(m));
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

void print_message_details(const QueuedMessage& m) {
  const store::Envelope& e = m.envelope;
  auto field = [](std::string_view key, std::string_view value) {
    fmt::print("{:<14}{}\n", fmt::format("{}:", key), printable(value));
  };
  field("id", e.id);
  field("shard", std::to_string(m.shard));
  field("state", state_name(m.entry.state));
  field("attempts", std::to_string(m.entry.attempts));
  field("next attempt", iso8601_ms(m.entry.next_attempt_ms));
  field("received", iso8601_ms(e.received_ms));
  field("client", fmt::format("{} port {} (HELO {})", e.client_ip, e.client_port, e.helo));
  field("tls", e.tls.empty() ? "none" : e.tls);
  field("size", fmt::format("{} bytes", e.size));
  field("sender", sender_text(e));
  for (const auto& r : e.recipients) field("recipient", r);
  field("message-id", e.message_id);
  field("subject", e.subject);
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
  // Per-domain queue views for customer roles come with the delivery issue.
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("the mail queue is for operators"));
  if (auto s = check_message_id(o.id); !s) return usage_error(s.error());
  auto spool = spool_for(ctx, o.id);
  if (!spool) return runtime_error(spool.error());
  if (!*spool) return usage_error(fmt::format("no such message: {}", o.id));
  if (o.raw) return write_raw(**spool, o.id);
  auto env = (*spool)->envelope(o.id);
  if (!env) return runtime_error(env.error());
  auto entry = (*spool)->queue_entry(o.id);
  if (!entry) return runtime_error(entry.error());
  if (!*env || !*entry) return usage_error(fmt::format("no such message: {}", o.id));
  QueuedMessage m{static_cast<unsigned>(store::shard_of_message_id(o.id)), std::move(**env), **entry};
  if (o.json) print_json_line(message_json(m));
  else print_message_details(m);
  return kExitOk;
}

int run_delete(const Context& ctx, const IdOptions& o) {
  // Per-domain queue views for customer roles come with the delivery issue.
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("the mail queue is for operators"));
  if (auto s = check_message_id(o.id); !s) return usage_error(s.error());
  auto spool = spool_for(ctx, o.id);
  if (!spool) return runtime_error(spool.error());
  if (!*spool) return usage_error(fmt::format("no such message: {}", o.id));
  auto removed = (*spool)->remove(o.id);
  if (!removed) return runtime_error(removed.error());
  if (!*removed) return usage_error(fmt::format("no such message: {}", o.id));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  if (auto s = audit(**store, ctx.principal, "queue.delete", o.id, {{"id", o.id}}, nullptr); !s)
    return runtime_error(s.error());
  fmt::print("Deleted message {}.\n", o.id);
  return kExitOk;
}

void add_list_command(CLI::App& group, Commands& out) {
  auto o = std::make_shared<ListOptions>();
  CLI::App* cmd = group.add_subcommand("list", "List queued messages of every shard");
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_list(ctx, *o); }});
}

void add_show_command(CLI::App& group, Commands& out) {
  auto o = std::make_shared<IdOptions>();
  CLI::App* cmd = group.add_subcommand("show", "Show a queued message's envelope, or its bytes with --raw");
  cmd->add_option("ID", o->id, "Message id, e.g. 0190f3c2a1b2c3.s1")->required();
  CLI::Option* json = cmd->add_flag("--json", o->json, "Print the envelope as a JSON object");
  cmd->add_flag("--raw", o->raw, "Write the stored message bytes exactly as received")->excludes(json);
  out.push_back({cmd, [o](const Context& ctx) { return run_show(ctx, *o); }});
}

void add_delete_command(CLI::App& group, Commands& out) {
  auto o = std::make_shared<IdOptions>();
  CLI::App* cmd = group.add_subcommand("delete", "Delete a queued message without delivering it");
  cmd->add_option("ID", o->id, "Message id")->required();
  out.push_back({cmd, [o](const Context& ctx) { return run_delete(ctx, *o); }});
}

}  // namespace

void add_queue_commands(CLI::App& root, Commands& out) {
  CLI::App* group = root.add_subcommand("queue", "Inspect and manage the delivery queue");
  add_list_command(*group, out);
  add_show_command(*group, out);
  add_delete_command(*group, out);
}

}  // namespace mxguard::console
