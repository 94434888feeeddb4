// The Prometheus exposition the engine serves: format, histogram buckets,
// escaping, and the sums over shards.
#include <doctest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "metrics.hpp"

using namespace mxguard;
using namespace mxguard::engine;

namespace {

// The sample lines of `text` as "name{labels}" -> value text.
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.rfind(' ');
    out[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return out;
}

}  // namespace

TEST_CASE("metrics: sample values and label escaping") {
  CHECK(format_sample_value(0) == "0");
  CHECK(format_sample_value(42) == "42");
  CHECK(format_sample_value(0.0005) == "0.0005");
  CHECK(format_sample_value(2.5) == "2.5");
  CHECK(format_sample_value(1.0 / 0.0) == "+Inf");
  CHECK(escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  Exposition e;
  e.family("mxguard_x_total", "counter", "Things,\nwith a \\ in the help.");
  e.sample("mxguard_x_total", {{"reason", "q\"uote"}}, 3);
  CHECK(e.text() == "# HELP mxguard_x_total Things,\\nwith a \\\\ in the help.\n# TYPE mxguard_x_total counter\n"
                    "mxguard_x_total{reason=\"q\\\"uote\"} 3\n");
}

TEST_CASE("metrics: histogram buckets are cumulative, +Inf equals the count") {
  Histogram h;
  h.observe_ns(100'000);         // 0.1 ms: first bucket
  h.observe_ns(1'000'000);       // exactly 1 ms: le="0.001" (upper bounds are inclusive)
  h.observe_ns(3'000'000);       // 3 ms: le="0.005"
  h.observe_ns(60'000'000'000);  // a minute: above every bound
  Histogram::Snapshot s;
  h.add_to(s);
  CHECK(s.count() == 4);
  Exposition e;
  e.histogram("mxguard_t_seconds", "T.", s);
  auto m = samples(e.text());
  CHECK(m["mxguard_t_seconds_bucket{le=\"0.0005\"}"] == "1");
  CHECK(m["mxguard_t_seconds_bucket{le=\"0.001\"}"] == "2");
  CHECK(m["mxguard_t_seconds_bucket{le=\"0.0025\"}"] == "2");
  CHECK(m["mxguard_t_seconds_bucket{le=\"0.005\"}"] == "3");
  CHECK(m["mxguard_t_seconds_bucket{le=\"10\"}"] == "3");
  CHECK(m["mxguard_t_seconds_bucket{le=\"+Inf\"}"] == "4");
  CHECK(m["mxguard_t_seconds_count"] == "4");
  CHECK(m["mxguard_t_seconds_sum"] == "60.0041");
  CHECK(e.text().find("# TYPE mxguard_t_seconds histogram\n") != std::string::npos);
}

TEST_CASE("metrics: render sums shards and names every label") {
  ShardMetrics a, b;
  a.connection_accepted();
  b.connection_accepted();
  b.connection_accepted();
  a.refused(refusal_for("relay_denied"));
  b.refused(refusal_for("unknown_recipient"));
  b.refused(refusal_for("client_blocked"));  // counted as blocked
  b.refused(refusal_for("something new"));   // counted as other
  a.verdict("deliver", 0);
  b.verdict("reject", steady_ns());
  b.delivery(delivery::Outcome::kDelivered);
  a.delivery(delivery::Outcome::kFailed, 2);
  b.commit().observe_ns(2'000'000);
  MetricsSnapshot s;
  s.version = "9.9";
  s.shards = {&a, &b};
  s.sessions = 5;
  s.queue_known = true;
  s.queue_messages = 7;
  s.now_unix_ms = 100'000;
  s.queue_oldest_ms = 40'000;
  s.bundle = MetricsSnapshot::Bundle{3, "factory", "abc\"d", 12};
  std::string text = render_metrics(s);
  auto m = samples(text);
  CHECK(m["mxguard_connections_accepted_total"] == "3");
  CHECK(m["mxguard_sessions"] == "5");
  CHECK(m["mxguard_shards"] == "2");
  CHECK(m["mxguard_refusals_total{reason=\"relay_denied\"}"] == "1");
  CHECK(m["mxguard_refusals_total{reason=\"unknown_recipient\"}"] == "1");
  CHECK(m["mxguard_refusals_total{reason=\"rejected_spam\"}"] == "1");
  CHECK(m["mxguard_refusals_total{reason=\"blocked\"}"] == "1");
  CHECK(m["mxguard_refusals_total{reason=\"other\"}"] == "1");
  CHECK(m["mxguard_refusals_total{reason=\"protocol_error\"}"] == "0");
  CHECK(m["mxguard_messages_total{action=\"deliver\"}"] == "1");
  CHECK(m["mxguard_messages_total{action=\"reject\"}"] == "1");
  CHECK(m["mxguard_messages_total{action=\"greylist\"}"] == "0");
  CHECK(m["mxguard_delivery_results_total{result=\"delivered\"}"] == "1");
  CHECK(m["mxguard_delivery_results_total{result=\"bounced\"}"] == "2");
  CHECK(m["mxguard_scan_duration_seconds_count"] == "1");  // the verdict without a start time is not timed
  CHECK(m["mxguard_commit_duration_seconds_bucket{le=\"0.0025\"}"] == "1");
  CHECK(m["mxguard_queue_messages"] == "7");
  CHECK(m["mxguard_queue_oldest_age_seconds"] == "60");
  CHECK(m["mxguard_shard_loop_lag_seconds{shard=\"1\"}"] == "0");
  CHECK(m["mxguard_rules_bundle_info{id=\"3\",name=\"factory\",digest=\"abc\\\"d\"}"] == "1");
  // Every family has HELP before TYPE, and every counter ends in _total.
  std::istringstream in(text);
  std::string prev;
  for (std::string line; std::getline(in, line); prev = line) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    CHECK(prev.rfind("# HELP ", 0) == 0);
    if (line.ends_with(" counter")) CHECK(line.find("_total counter") != std::string::npos);
  }
}

TEST_CASE("metrics: loop lag is how late the tick fired, held for a window") {
  ShardMetrics m;
  const int64_t period = 200'000'000;
  int64_t t = 1'000'000'000;
  m.tick(t, period);
  m.tick(t += period + 30'000'000, period);  // 30 ms late
  CHECK(m.loop_lag_ns() == 30'000'000);
  m.tick(t += period, period);  // on time: the spike stays visible
  CHECK(m.loop_lag_ns() == 30'000'000);
  for (int i = 0; i < 60; ++i) m.tick(t += period, period);  // two 5 s windows later
  CHECK(m.loop_lag_ns() == 0);
}
