// Statistics from the spools: tracking events bucketed by time and action,
// the feed ring's rule hits and scores, and the delivery queue.
#include "mxguard/admin/stats.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <set>

#include "mxguard/admin/quarantine_view.hpp"
#include "mxguard/admin/text.hpp"
#include "mxguard/core/strings.hpp"
#include "mxguard/store/spool.hpp"
#include "mxguard/store/tracking.hpp"

namespace mxguard::admin {

namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 24 * kHourMs;
// The score histogram's bucket edges; below the first and from the last on
// are open buckets.
constexpr double kScoreEdges[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15};

// The action an event is counted under, "" when it is no message decision.
std::string_view action_of(const store::TrackEvent& e) {
  const std::string& d = e.decision;
  if (d == "accepted") return "deliver";
  if (d == "quarantined") return "quarantine";
  if (d == "rejected") return "reject";
  if (d == "greylisted") return "greylist";
  if (std::find(std::begin(kStatsDeliveries), std::end(kStatsDeliveries), d) != std::end(kStatsDeliveries)) return "";
  if (d == "released" || d == "deleted") return "";
  return e.code >= 400 ? "refused" : "";
}

std::string_view failure_class(const store::TrackEvent& e) {
  if (e.decision == "returned") return "returned";
  if (e.decision != "deferred" && e.decision != "bounced") return "";
  if (e.code >= 400 && e.code < 500) return "4xx";
  if (e.code >= 500 && e.code < 600) return "5xx";
  return "no_reply";
}

std::string domain_of(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : to_lower(address.substr(at + 1));
}

}  // namespace

Outcome<StatsPeriod> parse_stats_period(std::string_view typed) {
  if (typed == "hour" || typed.empty()) return StatsPeriod::kHour;
  if (typed == "day") return StatsPeriod::kDay;
  return usage(fmt::format("'{}' is not a period (hour or day)", printable(typed)), "period");
}

Outcome<Stats> statistics(const Actor& a, StatsPeriod period, int64_t now) {
  auto scope = QuarantineScope::of(a.store, a.principal);
  if (!scope) return unavailable(scope.error());
  Stats s;
  s.period = period;
  s.bucket_ms = period == StatsPeriod::kHour ? kHourMs : kDayMs;
  size_t count = period == StatsPeriod::kHour ? 24 : std::clamp<size_t>(a.config.smtp.tracking_days, 1, 366);
  // Buckets end with the one holding `now`, aligned to UTC hours or days.
  s.end_ms = (now / s.bucket_ms + 1) * s.bucket_ms;
  const int64_t start = s.end_ms - static_cast<int64_t>(count) * s.bucket_ms;
  for (size_t i = 0; i < count; ++i) s.buckets.push_back(start + static_cast<int64_t>(i) * s.bucket_ms);
  for (auto act : kStatsActions) s.actions[std::string(act)].assign(count, 0);
  for (auto d : kStatsDeliveries) s.deliveries[std::string(d)] = 0;
  for (auto c : kFailureClasses) s.failures[std::string(c)] = 0;
  for (size_t i = 0; i + 1 < std::size(kScoreEdges); ++i) {
    if (i == 0) s.scores.push_back({-std::numeric_limits<double>::infinity(), kScoreEdges[0]});
    s.scores.push_back({kScoreEdges[i], kScoreEdges[i + 1]});
  }
  s.scores.push_back({kScoreEdges[std::size(kScoreEdges) - 1], std::numeric_limits<double>::infinity()});
  std::map<std::string, uint64_t> rules;

  for (unsigned shard : store::Spool::existing_shards(a.config.state_dir)) {
    auto spool = store::Spool::open(a.config.state_dir, shard);
    if (!spool) return unavailable(spool.error());
    store::TrackFilter f;
    f.since_ms = start;
    f.until_ms = s.end_ms - 1;
    auto st = (*spool)->find_events(f, [&](const store::TrackEvent& e) {
      std::vector<std::string> mine = scope->all() ? e.recipients : scope->visible(e.recipients);
      if (mine.empty() && !scope->all()) return;
      size_t bucket = static_cast<size_t>((e.time_ms - start) / s.bucket_ms);
      if (e.time_ms < start || bucket >= count) return;
      std::string_view action = action_of(e);
      if (!action.empty()) {
        s.actions[std::string(action)][bucket] += 1;
        std::set<std::string> domains;
        for (const auto& r : mine) domains.insert(domain_of(r));
        if (domains.empty()) domains.insert("");
        for (const auto& d : domains) s.domains[d][std::string(action)] += 1;
        return;
      }
      auto it = s.deliveries.find(e.decision);
      if (it == s.deliveries.end()) return;
      uint64_t n = mine.empty() ? 1 : mine.size();
      it->second += n;
      if (auto c = failure_class(e); !c.empty()) s.failures[std::string(c)] += n;
    });
    if (!st) return unavailable(fmt::format("spool {}: {}", shard, st.error()));

    st = (*spool)->feed_since(0, [&](uint64_t, std::string_view text) {
      auto j = nlohmann::ordered_json::parse(text, nullptr, false);
      if (!j.is_object()) return;
      int64_t t = j.value("time_ms", int64_t{0});
      if (t < start || t >= s.end_ms) return;
      if (!scope->all()) {
        std::vector<std::string> rcpts;
        if (j.contains("recipients") && j["recipients"].is_array())
          for (const auto& r : j["recipients"])
            if (r.is_string()) rcpts.push_back(r.get<std::string>());
        if (scope->visible(rcpts).empty()) return;
      }
      ++s.scored;
      double score = j.contains("score") && j["score"].is_number() ? j["score"].get<double>() : 0.0;
      for (auto& b : s.scores)
        if (score >= b.min && score < b.max) {
          ++b.count;
          break;
        }
      std::set<std::string> hit;
      if (j.contains("reasons") && j["reasons"].is_array())
        for (const auto& r : j["reasons"])
          if (r.is_object() && r.contains("rule") && r["rule"].is_string()) hit.insert(r["rule"].get<std::string>());
      for (const auto& r : hit) ++rules[r];
    });
    if (!st) return unavailable(fmt::format("spool {}: {}", shard, st.error()));

    auto count_queued = [&](int64_t received_ms) {
      ++s.queue_messages;
      if (s.queue_oldest_ms == 0 || received_ms < s.queue_oldest_ms) s.queue_oldest_ms = received_ms;
    };
    if (scope->all()) {
      auto q = (*spool)->queue_stats();
      if (!q) return unavailable(q.error());
      s.queue_messages += q->messages;
      if (q->messages && (s.queue_oldest_ms == 0 || q->oldest_received_ms < s.queue_oldest_ms))
        s.queue_oldest_ms = q->oldest_received_ms;
    } else {
      st = (*spool)->for_each([&](const store::Envelope& env, const store::QueueEntry& q) {
        for (const auto& r : store::pending_recipients(env, q))
          if (scope->sees(r.address)) return count_queued(env.received_ms);
      });
      if (!st) return unavailable(st.error());
    }
  }
  s.top_rules.assign(rules.begin(), rules.end());
  std::stable_sort(s.top_rules.begin(), s.top_rules.end(),
                   [](const auto& x, const auto& y) { return x.second > y.second; });
  if (s.top_rules.size() > kTopRules) s.top_rules.resize(kTopRules);
  return s;
}

nlohmann::ordered_json stats_json(const Stats& s) {
  nlohmann::ordered_json buckets = nlohmann::ordered_json::array();
  for (size_t i = 0; i < s.buckets.size(); ++i) {
    nlohmann::ordered_json b = {{"start", iso8601(s.buckets[i])}, {"start_ms", s.buckets[i]}};
    nlohmann::ordered_json counts = nlohmann::ordered_json::object();
    for (auto act : kStatsActions) counts[std::string(act)] = s.actions.at(std::string(act))[i];
    b["actions"] = counts;
    buckets.push_back(std::move(b));
  }
  nlohmann::ordered_json totals = nlohmann::ordered_json::object();
  for (auto act : kStatsActions) {
    uint64_t n = 0;
    for (uint64_t c : s.actions.at(std::string(act))) n += c;
    totals[std::string(act)] = n;
  }
  nlohmann::ordered_json domains = nlohmann::ordered_json::array();
  for (const auto& [d, counts] : s.domains) {
    nlohmann::ordered_json c = nlohmann::ordered_json::object();
    for (auto act : kStatsActions) {
      auto it = counts.find(std::string(act));
      c[std::string(act)] = it == counts.end() ? 0 : it->second;
    }
    domains.push_back({{"domain", d}, {"actions", c}});
  }
  nlohmann::ordered_json rules = nlohmann::ordered_json::array();
  for (const auto& [r, n] : s.top_rules) rules.push_back({{"rule", r}, {"messages", n}});
  nlohmann::ordered_json scores = nlohmann::ordered_json::array();
  for (const auto& b : s.scores) {
    nlohmann::ordered_json j = {{"min", nullptr}, {"max", nullptr}, {"count", b.count}};
    if (std::isfinite(b.min)) j["min"] = b.min;
    if (std::isfinite(b.max)) j["max"] = b.max;
    scores.push_back(std::move(j));
  }
  nlohmann::ordered_json deliveries = nlohmann::ordered_json::object(), failures = nlohmann::ordered_json::object();
  for (auto d : kStatsDeliveries) deliveries[std::string(d)] = s.deliveries.at(std::string(d));
  for (auto c : kFailureClasses) failures[std::string(c)] = s.failures.at(std::string(c));
  nlohmann::ordered_json queue = {{"messages", s.queue_messages}, {"oldest", nullptr}};
  if (s.queue_oldest_ms) queue["oldest"] = iso8601(s.queue_oldest_ms);
  return {{"period", s.period == StatsPeriod::kHour ? "hour" : "day"},
          {"bucket_seconds", s.bucket_ms / 1000},
          {"end", iso8601(s.end_ms)},
          {"buckets", buckets},
          {"totals", totals},
          {"domains", domains},
          {"top_rules", rules},
          {"scores", scores},
          {"scored_messages", s.scored},
          {"deliveries", deliveries},
          {"delivery_failures", failures},
          {"queue", queue}};
}

}  // namespace mxguard::admin
