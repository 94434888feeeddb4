// Counters, histograms and their rendering in the Prometheus text format.
#include "metrics.hpp"

#include <chrono>
#include <cmath>

#include <fmt/format.h>

namespace mxguard::engine {

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Histogram::observe_ns(int64_t ns) {
  if (ns < 0) ns = 0;
  double s = static_cast<double>(ns) / 1e9;
  size_t i = 0;
  while (i < kLatencyBounds.size() && s > kLatencyBounds[i]) ++i;
  counts_[i].add();
  sum_ns_.add(static_cast<uint64_t>(ns));
}

void Histogram::add_to(Snapshot& s) const {
  for (size_t i = 0; i < kBuckets; ++i) s.counts[i] += counts_[i].value();
  s.sum_ns += sum_ns_.value();
}

uint64_t Histogram::Snapshot::count() const {
  uint64_t n = 0;
  for (uint64_t c : counts) n += c;
  return n;
}

RefusalReason refusal_for(std::string_view decision) {
  if (decision == "client_blocked") return RefusalReason::kBlocked;
  for (size_t i = 0; i < kRefusalNames.size(); ++i)
    if (kRefusalNames[i] == decision) return static_cast<RefusalReason>(i);
  return RefusalReason::kOther;
}

void ShardMetrics::verdict(std::string_view action, int64_t started_ns) {
  for (size_t i = 0; i < kActionNames.size(); ++i)
    if (kActionNames[i] == action) messages_[i].add();
  if (action == "reject") refused(RefusalReason::kRejectedSpam);
  else if (action == "greylist") refused(RefusalReason::kGreylisted);
  if (started_ns > 0) scan_.observe_ns(steady_ns() - started_ns);
}

void ShardMetrics::tick(int64_t now_ns, int64_t period_ns) {
  constexpr int64_t kWindowNs = 5'000'000'000;
  if (last_tick_ns_ == 0) {
    last_tick_ns_ = window_start_ns_ = now_ns;
    return;
  }
  int64_t lag = now_ns - last_tick_ns_ - period_ns;
  last_tick_ns_ = now_ns;
  if (lag < 0) lag = 0;
  if (lag > window_max_ns_) window_max_ns_ = lag;
  // A spike shows at once and stays visible for a whole window.
  if (now_ns - window_start_ns_ >= kWindowNs) {
    lag_published_.set(static_cast<uint64_t>(window_max_ns_));
    window_max_ns_ = 0;
    window_start_ns_ = now_ns;
  } else if (static_cast<uint64_t>(window_max_ns_) > lag_published_.value()) {
    lag_published_.set(static_cast<uint64_t>(window_max_ns_));
  }
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_sample_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  // HELP text escapes only backslash and newline.
  std::string h;
  for (char c : help) {
    if (c == '\\') h += "\\\\";
    else if (c == '\n') h += "\\n";
    else h += c;
  }
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, h, name, type);
}

void Exposition::sample(std::string_view name,
                        std::initializer_list<std::pair<std::string_view, std::string_view>> labels, double value) {
  out_ += name;
  if (labels.size() > 0) {
    out_ += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out_ += ',';
      first = false;
      out_ += fmt::format("{}=\"{}\"", k, escape_label_value(v));
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += format_sample_value(value);
  out_ += '\n';
}

void Exposition::histogram(std::string_view name, std::string_view help, const Histogram::Snapshot& h) {
  family(name, "histogram", help);
  std::string bucket = fmt::format("{}_bucket", name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kLatencyBounds.size(); ++i) {
    cumulative += h.counts[i];
    sample(bucket, {{"le", format_sample_value(kLatencyBounds[i])}}, static_cast<double>(cumulative));
  }
  cumulative += h.counts[kLatencyBounds.size()];
  sample(bucket, {{"le", "+Inf"}}, static_cast<double>(cumulative));
  sample(fmt::format("{}_sum", name), static_cast<double>(h.sum_ns) / 1e9);
  sample(fmt::format("{}_count", name), static_cast<double>(cumulative));
}

std::string render_metrics(const MetricsSnapshot& s) {
  Exposition e;
  auto sum = [&](auto get) {
    uint64_t n = 0;
    for (const ShardMetrics* m : s.shards) n += get(*m);
    return static_cast<double>(n);
  };

  e.family("mxguard_build_info", "gauge", "The engine's version.");
  e.sample("mxguard_build_info", {{"version", s.version}}, 1);
  e.family("mxguard_start_time_seconds", "gauge", "When the engine started, Unix time.");
  e.sample("mxguard_start_time_seconds", static_cast<double>(s.start_unix_ms / 1000));
  e.family("mxguard_shards", "gauge", "Shards (event loops) running.");
  e.sample("mxguard_shards", static_cast<double>(s.shards.size()));

  e.family("mxguard_connections_accepted_total", "counter",
           "SMTP connections accepted, including those then refused by a limit.");
  e.sample("mxguard_connections_accepted_total", sum([](const ShardMetrics& m) { return m.accepted(); }));
  e.family("mxguard_sessions", "gauge", "SMTP connections open now.");
  e.sample("mxguard_sessions", static_cast<double>(s.sessions));

  e.family("mxguard_messages_total", "counter", "Messages whose content was received, by the verdict's action.");
  for (size_t i = 0; i < kActionNames.size(); ++i)
    e.sample("mxguard_messages_total", {{"action", kActionNames[i]}},
             sum([i](const ShardMetrics& m) { return m.messages(i); }));

  e.family("mxguard_refusals_total", "counter",
           "Connections, commands and messages refused, by reason (a RCPT counts once per recipient).");
  for (size_t i = 0; i < kRefusalNames.size(); ++i)
    e.sample("mxguard_refusals_total", {{"reason", kRefusalNames[i]}},
             sum([i](const ShardMetrics& m) { return m.refusals(i); }));

  Histogram::Snapshot scan, commit;
  for (const ShardMetrics* m : s.shards) {
    m->scan_time().add_to(scan);
    m->commit_time().add_to(commit);
  }
  e.histogram("mxguard_scan_duration_seconds",
              "From the end of a message's content to its verdict: the last scan pass and the DNS checks.", scan);
  e.histogram("mxguard_commit_duration_seconds", "Storage writer batch commits to a spool, fsync included.", commit);

  if (s.queue_known) {
    e.family("mxguard_queue_messages", "gauge", "Messages in the delivery queue, all shards.");
    e.sample("mxguard_queue_messages", static_cast<double>(s.queue_messages));
    e.family("mxguard_queue_oldest_age_seconds", "gauge",
             "Age of the oldest message in the delivery queue (0 when it is empty).");
    double age = s.queue_oldest_ms > 0 ? static_cast<double>(std::max<int64_t>(s.now_unix_ms - s.queue_oldest_ms, 0)) / 1000
                                       : 0;
    e.sample("mxguard_queue_oldest_age_seconds", std::floor(age));
  }

  e.family("mxguard_delivery_results_total", "counter", "Delivery attempts' results, one per recipient.");
  for (size_t i = 0; i < kDeliveryNames.size(); ++i)
    e.sample("mxguard_delivery_results_total", {{"result", kDeliveryNames[i]}},
             sum([i](const ShardMetrics& m) { return m.deliveries(i); }));

  e.family("mxguard_shard_loop_lag_seconds", "gauge",
           "How late each shard's 200 ms timer fired, the largest of the last 5 to 10 seconds.");
  for (size_t i = 0; i < s.shards.size(); ++i) {
    std::string shard = std::to_string(i);
    e.sample("mxguard_shard_loop_lag_seconds", {{"shard", shard}},
             static_cast<double>(s.shards[i]->loop_lag_ns()) / 1e9);
  }

  if (s.bundle) {
    e.family("mxguard_rules_bundle_info", "gauge", "The rule bundle every shard scans with.");
    std::string id = std::to_string(s.bundle->id);
    e.sample("mxguard_rules_bundle_info", {{"id", id}, {"name", s.bundle->name}, {"digest", s.bundle->digest}}, 1);
    e.family("mxguard_rules", "gauge", "Rules in the bundle in force.");
    e.sample("mxguard_rules", static_cast<double>(s.bundle->rules));
  }
  return e.text();
}

}  // namespace mxguard::engine
