// `mxguard stats`: the dashboard's statistics as text or JSON (admin/stats.hpp).
#include <fmt/format.h>

#include <cmath>

#include "console.hpp"
#include "mxguard/admin/stats.hpp"
#include "mxguard/admin/text.hpp"
#include "output.hpp"

namespace mxguard::console {

namespace {

struct StatsOptions {
  std::string period = "hour";
  bool json = false;
};

std::string score_label(const admin::ScoreBucket& b) {
  if (!std::isfinite(b.min)) return fmt::format("<{:g}", b.max);
  if (!std::isfinite(b.max)) return fmt::format(">={:g}", b.min);
  return fmt::format("{:g}-{:g}", b.min, b.max);
}

void print_stats(const admin::Stats& s) {
  fmt::print("Messages per {} from {} to {}\n", s.period == admin::StatsPeriod::kHour ? "hour" : "day",
             admin::iso8601(s.buckets.front()), admin::iso8601(s.end_ms));
  fmt::print("{:<30}", "");
  for (auto act : admin::kStatsActions) fmt::print(" {:>10}", act);
  fmt::print("\n{:<30}", "all");
  for (auto act : admin::kStatsActions) {
    uint64_t n = 0;
    for (uint64_t c : s.actions.at(std::string(act))) n += c;
    fmt::print(" {:>10}", n);
  }
  fmt::print("\n");
  for (const auto& [domain, counts] : s.domains) {
    fmt::print("{:<30}", admin::printable(domain.empty() ? "(no recipient)" : domain));
    for (auto act : admin::kStatsActions) {
      auto it = counts.find(std::string(act));
      fmt::print(" {:>10}", it == counts.end() ? 0 : it->second);
    }
    fmt::print("\n");
  }
  std::string rules;
  for (const auto& [r, n] : s.top_rules) rules += fmt::format("{}{} {}", rules.empty() ? "" : ", ", admin::printable(r), n);
  fmt::print("Top rules: {}\n", rules.empty() ? "-" : rules);
  std::string scores;
  for (const auto& b : s.scores) scores += fmt::format("{}{}: {}", scores.empty() ? "" : "  ", score_label(b), b.count);
  fmt::print("Scores ({} messages): {}\n", s.scored, scores);
  fmt::print("Delivery: delivered {}, deferred {}, bounced {}, returned {}\n", s.deliveries.at("delivered"),
             s.deliveries.at("deferred"), s.deliveries.at("bounced"), s.deliveries.at("returned"));
  fmt::print("Delivery failures: 4xx {}, 5xx {}, no reply {}, returned {}\n", s.failures.at("4xx"),
             s.failures.at("5xx"), s.failures.at("no_reply"), s.failures.at("returned"));
  fmt::print("Queue: {}{}\n", admin::count_of(s.queue_messages, "message", "messages"),
             s.queue_oldest_ms ? ", oldest received " + admin::iso8601(s.queue_oldest_ms) : "");
}

int run_stats(const Context& ctx, const StatsOptions& o) {
  auto period = admin::parse_stats_period(o.period);
  if (!period) return usage_error(fmt::format("--period: {}", period.failure().message));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto s = admin::statistics(actor(ctx, **store), *period, admin::now_ms());
  if (!s) return fail(s.failure());
  if (o.json) print_json_line(admin::stats_json(*s));
  else print_stats(*s);
  return kExitOk;
}

}  // namespace

void add_stats_commands(CLI::App& root, Commands& out) {
  auto o = std::make_shared<StatsOptions>();
  CLI::App* cmd = root.add_subcommand("stats", "Show message statistics per hour (24 h) or per day (tracking_days)");
  cmd->add_option("--period", o->period, "hour (the last 24 hours, default) or day (the last tracking_days days)");
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_stats(ctx, *o); }});
}

}  // namespace mxguard::console
