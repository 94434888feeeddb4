// Message tracking: the filters checked, the events of every shard found
// (store::track_query) and each cut down to the principal's scope.
#include "mxguard/admin/track.hpp"

#include <fmt/format.h>

#include "mxguard/admin/quarantine_view.hpp"
#include "mxguard/admin/text.hpp"
#include "mxguard/core/net.hpp"
#include "mxguard/core/strings.hpp"

namespace mxguard::admin {

Outcome<TrackResult> track_events(const Actor& a, const TrackFilter& f, size_t limit) {
  store::TrackQuery q;
  for (const auto* s : {&f.sender, &f.recipient, &f.id, &f.ref})
    if (s->size() > 320) return usage("at most 320 characters", s == &f.sender ? "sender" : s == &f.recipient ? "recipient" : s == &f.id ? "id" : "ref");
  q.filter.sender = to_lower(f.sender);
  q.filter.recipient = to_lower(f.recipient);
  q.filter.message_id = f.id;
  q.filter.ref_id = f.ref;
  if (!f.ip.empty()) {
    auto ip = IpAddress::parse(f.ip);
    if (!ip) return usage(fmt::format("not an IP address: {}", printable(f.ip)), "ip");
    q.filter.client_ip = ip->to_string();
  }
  int64_t now = now_ms();
  if (!f.since.empty()) {
    auto t = parse_time_arg(f.since, now);
    if (!t) return usage(t.error(), "since");
    q.filter.since_ms = *t;
  }
  if (!f.until.empty()) {
    auto t = parse_time_arg(f.until, now);
    if (!t) return usage(t.error(), "until");
    q.filter.until_ms = *t;
  }
  if (q.filter.since_ms && q.filter.until_ms && *q.filter.since_ms > *q.filter.until_ms)
    return usage("since is after until", "since");
  q.whole_sessions = !f.ref.empty();
  q.follow_releases = !f.id.empty();

  auto scope = QuarantineScope::of(a.store, a.principal);
  if (!scope) return unavailable(scope.error());
  auto events = store::track_query(a.config.state_dir, q);
  if (!events) return unavailable(events.error());

  std::vector<TrackedEvent> shown;
  for (auto& e : *events) {
    std::vector<std::string> mine = scope->all() ? e.recipients : scope->visible(e.recipients);
    if (mine.empty() && !scope->all()) continue;
    shown.push_back({std::move(e), std::move(mine)});
  }
  TrackResult out;
  out.older = shown.size() > limit ? shown.size() - limit : 0;
  out.events.assign(std::make_move_iterator(shown.begin() + static_cast<std::ptrdiff_t>(out.older)),
                    std::make_move_iterator(shown.end()));
  return out;
}

nlohmann::ordered_json tracked_json(const TrackedEvent& t) {
  const store::TrackEvent& e = t.event;
  return {{"time", iso8601(e.time_ms)}, {"time_ms", e.time_ms},     {"shard", e.shard},
          {"session", e.session},       {"client", e.client_ip},    {"helo", e.helo},
          {"sender", e.sender},         {"recipients", t.recipients}, {"decision", e.decision},
          {"code", e.code},             {"reason", e.reason},       {"id", e.message_id},
          {"ref", e.ref_id}};
}

}  // namespace mxguard::admin
