// Message tracking behind `mxguard track` and GET /api/v1/track: the
// decision events of every shard matching the filters, each reduced to the
// recipients the principal may see (a session's refusals for another tenant
// stay hidden).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/admin/domains.hpp"
#include "mxguard/admin/failure.hpp"
#include "mxguard/store/tracking.hpp"

namespace mxguard::admin {

// As typed; times in parse_time_arg forms. `ref` brings the whole session
// that got the refusal, `id` the message's whole path (a released copy too).
struct TrackFilter {
  std::string sender, recipient, ip, id, ref, since, until;
};

struct TrackedEvent {
  store::TrackEvent event;
  std::vector<std::string> recipients;  // the ones the principal sees
};

struct TrackResult {
  std::vector<TrackedEvent> events;  // oldest first: the newest `limit`
  size_t older = 0;                  // matching events left out by the limit
};

// Bad filter values are usage with the field named ("ip", "since", "until").
Outcome<TrackResult> track_events(const Actor& a, const TrackFilter& f, size_t limit);

// {"time","time_ms","shard","session","client","helo","sender","recipients",
//  "decision","code","reason","id","ref"} (`track --json`, the API).
nlohmann::ordered_json tracked_json(const TrackedEvent& e);

}  // namespace mxguard::admin
