// `mxguard track`: the decision events of every shard (store/tracking.hpp),
// one line each, to answer "why didn't X's mail reach us?". A reference id
// brings the whole session that got it; a message id its whole path.
#include <fmt/format.h>

#include "console.hpp"
#include "mxguard/core/strings.hpp"
#include "mxguard/store/tracking.hpp"
#include "output.hpp"
#include "quarantine_view.hpp"

namespace mxguard::console {

namespace {

struct TrackOptions {
  std::string sender, recipient, ip, id, ref, since, until;
  size_t limit = 1000;
  bool json = false;
};

nlohmann::ordered_json event_json(const store::TrackEvent& e, const std::vector<std::string>& recipients) {
  return {{"time", iso8601(e.time_ms)}, {"time_ms", e.time_ms},   {"shard", e.shard},
          {"session", e.session},       {"client", e.client_ip}, {"helo", e.helo},
          {"sender", e.sender},         {"recipients", recipients}, {"decision", e.decision},
          {"code", e.code},             {"reason", e.reason},    {"id", e.message_id},
          {"ref", e.ref_id}};
}

void print_event(const store::TrackEvent& e, const std::vector<std::string>& recipients) {
  std::string rcpts;
  for (const auto& r : recipients) rcpts += (rcpts.empty() ? "" : ",") + r;
  std::string which = !e.message_id.empty() ? "id=" + e.message_id : !e.ref_id.empty() ? "ref=" + e.ref_id : "-";
  if (e.decision == "released" && !e.ref_id.empty()) which = fmt::format("id={} copy={}", e.message_id, e.ref_id);
  fmt::print("{} shard={} {:<15} {} -> {} {} {} {} \"{}\"\n", iso8601(e.time_ms), e.shard,
             printable(e.client_ip.empty() ? "-" : e.client_ip),
             printable(e.sender.empty() ? "<>" : "<" + e.sender + ">"), printable(rcpts.empty() ? "-" : rcpts),
             e.decision, e.code == 0 ? std::string("-") : std::to_string(e.code), which, printable(e.reason));
}

int run_track(const Context& ctx, const TrackOptions& o) {
  store::TrackQuery q;
  q.filter.sender = to_lower(o.sender);
  q.filter.recipient = to_lower(o.recipient);
  q.filter.message_id = o.id;
  q.filter.ref_id = o.ref;
  if (!o.ip.empty()) {
    auto ip = IpAddress::parse(o.ip);
    if (!ip) return usage_error(fmt::format("--ip: not an IP address: {}", o.ip));
    q.filter.client_ip = ip->to_string();
  }
  int64_t now = now_ms();
  if (!o.since.empty()) {
    auto t = parse_time_arg(o.since, now);
    if (!t) return usage_error(fmt::format("--since: {}", t.error()));
    q.filter.since_ms = *t;
  }
  if (!o.until.empty()) {
    auto t = parse_time_arg(o.until, now);
    if (!t) return usage_error(fmt::format("--until: {}", t.error()));
    q.filter.until_ms = *t;
  }
  if (q.filter.since_ms && q.filter.until_ms && *q.filter.since_ms > *q.filter.until_ms)
    return usage_error("--since is after --until");
  q.whole_sessions = !o.ref.empty();
  q.follow_releases = !o.id.empty();

  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto scope = QuarantineScope::of(**store, ctx.principal);
  if (!scope) return runtime_error(scope.error());
  auto events = store::track_query(ctx.config.state_dir, q);
  if (!events) return runtime_error(events.error());

  // Others see an event only for recipients they may see, and only those
  // recipients: a session's refusals for another tenant stay hidden.
  std::vector<std::pair<const store::TrackEvent*, std::vector<std::string>>> shown;
  for (const auto& e : *events) {
    if (scope->all()) {
      shown.emplace_back(&e, e.recipients);
      continue;
    }
    std::vector<std::string> mine = scope->visible(e.recipients);
    if (!mine.empty()) shown.emplace_back(&e, std::move(mine));
  }
  size_t start = shown.size() > o.limit ? shown.size() - o.limit : 0;
  if (start > 0)
    fmt::print(stderr, "mxguard: {} older events not shown (raise --limit or narrow --since)\n", start);
  for (size_t i = start; i < shown.size(); ++i) {
    if (o.json) print_json_line(event_json(*shown[i].first, shown[i].second));
    else print_event(*shown[i].first, shown[i].second);
  }
  return kExitOk;
}

}  // namespace

void add_track_commands(CLI::App& root, Commands& out) {
  auto o = std::make_shared<TrackOptions>();
  CLI::App* cmd = root.add_subcommand("track", "Find what happened to mail: every decision, refusal and delivery");
  cmd->add_option("--sender", o->sender, "Envelope sender (exact address)");
  cmd->add_option("--recipient", o->recipient, "Envelope recipient (exact address)");
  cmd->add_option("--ip", o->ip, "Client IP address");
  cmd->add_option("--id", o->id, "Message id (queue id): its whole path, a released copy included");
  cmd->add_option("--ref", o->ref, "Reference id of a refusal: the whole session that got it");
  cmd->add_option("--since", o->since, "At or after (2026-05-01, 2026-05-01T12:00:00Z, 2h, 7d, @UNIX)");
  cmd->add_option("--until", o->until, "At or before (same forms as --since)");
  cmd->add_option("-n,--limit", o->limit, "Show at most the newest N events (default 1000)")
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_track(ctx, *o); }});
}

}  // namespace mxguard::console
