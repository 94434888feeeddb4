// `mxguard track`: the decision events of every shard (store/tracking.hpp),
// one line each, to answer "why didn't X's mail reach us?". A reference id
// brings the whole session that got it; a message id its whole path.
#include <fmt/format.h>

#include "console.hpp"
#include "mxguard/admin/track.hpp"
#include "output.hpp"
#include "quarantine_view.hpp"

namespace mxguard::console {

namespace {

struct TrackOptions {
  std::string sender, recipient, ip, id, ref, since, until;
  size_t limit = 1000;
  bool json = false;
};

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

// A refused filter, worded as the options are named.
int track_failure(const admin::Failure& f) {
  if (f.category != admin::Category::kUsage || f.field.empty()) return fail(f);
  if (f.message == "since is after until") return usage_error("--since is after --until");
  return usage_error(fmt::format("--{}: {}", f.field, f.message));
}

int run_track(const Context& ctx, const TrackOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  const admin::TrackFilter f{o.sender, o.recipient, o.ip, o.id, o.ref, o.since, o.until};
  auto found = admin::track_events(actor(ctx, **store), f, o.limit);
  if (!found) return track_failure(found.failure());
  if (found->older > 0)
    fmt::print(stderr, "mxguard: {} older events not shown (raise --limit or narrow --since)\n", found->older);
  for (const auto& t : found->events) {
    if (o.json) print_json_line(admin::tracked_json(t));
    else print_event(t.event, t.recipients);
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
