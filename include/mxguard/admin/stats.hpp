// Statistics behind GET /api/v1/stats and `mxguard stats`: counts per hour
// (last 24 hours) or per day (last tracking_days days), computed from what the
// spools already keep. Message counts come from the tracking events (kept
// tracking_days); rule hits and the score histogram from the feed ring (its
// newest Spool::kFeedKeep entries per shard); the queue from the spools.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/admin/domains.hpp"
#include "mxguard/admin/failure.hpp"

namespace mxguard::admin {

enum class StatsPeriod { kHour, kDay };
// "hour" or "day"; usage (field "period") otherwise.
Outcome<StatsPeriod> parse_stats_period(std::string_view typed);

// The actions a message count is kept under: the verdicts, and "refused" for
// what the SMTP session turned away before a verdict (relay denied, unknown
// recipient, blocked, ...).
inline constexpr std::string_view kStatsActions[] = {"deliver", "quarantine", "reject", "greylist", "refused"};
// Delivery results, per recipient and attempt.
inline constexpr std::string_view kStatsDeliveries[] = {"delivered", "deferred", "bounced", "returned"};
// Failed attempts by what went wrong: the backend's 4xx or 5xx reply, no
// reply at all (connection, TLS, no route), or returned to the sender
// (expired in the queue, or by the operator).
inline constexpr std::string_view kFailureClasses[] = {"4xx", "5xx", "no_reply", "returned"};

struct ScoreBucket {
  double min, max;  // [min, max); the first bucket has no min, the last no max
  uint64_t count = 0;
};

struct Stats {
  StatsPeriod period = StatsPeriod::kHour;
  int64_t bucket_ms = 0;
  std::vector<int64_t> buckets;  // each bucket's start, oldest first
  int64_t end_ms = 0;            // the end of the last bucket
  // action -> count per bucket; over every domain the principal sees.
  std::map<std::string, std::vector<uint64_t>> actions;
  // domain -> action -> total over the period; "" for refusals without a recipient.
  std::map<std::string, std::map<std::string, uint64_t>> domains;
  std::vector<std::pair<std::string, uint64_t>> top_rules;  // messages a rule hit, most first
  std::vector<ScoreBucket> scores;
  uint64_t scored = 0;  // feed entries the rules and scores come from
  std::map<std::string, uint64_t> deliveries;  // kStatsDeliveries -> count
  std::map<std::string, uint64_t> failures;    // kFailureClasses -> count
  uint64_t queue_messages = 0;
  int64_t queue_oldest_ms = 0;
};

inline constexpr size_t kTopRules = 10;

// Everything the principal may see: non-operators count the events and
// queued messages of recipients in their scope (QuarantineScope).
Outcome<Stats> statistics(const Actor& a, StatsPeriod period, int64_t now_ms);

nlohmann::ordered_json stats_json(const Stats& s);

}  // namespace mxguard::admin
