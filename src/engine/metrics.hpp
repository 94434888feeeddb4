// The engine's counters for Prometheus: each shard owns a ShardMetrics that
// only its own thread writes (the commit histogram only its storage writer),
// so an increment is a relaxed load and store, no lock and no locked
// instruction; the metrics thread reads them all and renders the text.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/delivery/client.hpp"
#include "mxguard/smtp/session.hpp"

namespace mxguard::engine {

// A value written by one thread and read by any.
class Counter {
 public:
  void add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void set(uint64_t v) { v_.store(v, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Upper bounds in seconds shared by the scan and commit histograms: from a
// fraction of an fsync (about 3 ms here) to a DNS check that timed out.
inline constexpr std::array<double, 14> kLatencyBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                          0.1,    0.25,  0.5,    1,     2.5,  5,     10};

// A histogram written by one thread: counts per bucket (not cumulative;
// the last one is above every bound) and the sum in nanoseconds.
class Histogram {
 public:
  static constexpr size_t kBuckets = kLatencyBounds.size() + 1;
  void observe_ns(int64_t ns);

  struct Snapshot {
    std::array<uint64_t, kBuckets> counts{};
    uint64_t sum_ns = 0;
    uint64_t count() const;
  };
  void add_to(Snapshot& s) const;

 private:
  std::array<Counter, kBuckets> counts_;
  Counter sum_ns_;
};

// Labels of mxguard_messages_total: the verdict's action.
inline constexpr std::array<std::string_view, 4> kActionNames = {"deliver", "quarantine", "reject", "greylist"};

// Labels of mxguard_refusals_total: why a connection, a command or a
// message was turned away.
enum class RefusalReason : uint8_t {
  kRelayDenied, kUnknownRecipient, kBlocked, kSuspended, kRateLimited, kConnectionLimit, kConnectionRate,
  kCapacity, kGreylisted, kRejectedSpam, kTooSlow, kTimeout, kSessionTime, kTempFailure, kCalloutUnavailable,
  kProtocolError, kTooLarge, kBadContent, kTooManyRecipients, kTooManyErrors, kEarlyTalker, kStorageFailure,
  kShuttingDown, kOther, kCount
};
inline constexpr std::array<std::string_view, static_cast<size_t>(RefusalReason::kCount)> kRefusalNames = {
    "relay_denied",   "unknown_recipient", "blocked",         "suspended",           "rate_limited",
    "connection_limit", "connection_rate", "capacity",        "greylisted",          "rejected_spam",
    "too_slow",       "timeout",           "session_time",    "temp_failure",        "callout_unavailable",
    "protocol_error", "too_large",         "bad_content",     "too_many_recipients", "too_many_errors",
    "early_talker",   "storage_failure",   "shutting_down",   "other"};

// The label a session's refusal (smtp::Refusal::decision) is counted under.
RefusalReason refusal_for(std::string_view decision);

// Labels of mxguard_delivery_results_total, one per recipient and attempt.
inline constexpr std::array<std::string_view, 3> kDeliveryNames = {"delivered", "deferred", "bounced"};
inline size_t delivery_index(delivery::Outcome o) {
  return o == delivery::Outcome::kDelivered ? 0 : o == delivery::Outcome::kDeferred ? 1 : 2;
}
// The name of a delivery result, in metrics and tracking events alike.
inline std::string_view delivery_name(delivery::Outcome o) { return kDeliveryNames[delivery_index(o)]; }

// Monotonic nanoseconds, the clock of every duration here.
int64_t steady_ns();

class ShardMetrics {
 public:
  void connection_accepted() { accepted_.add(); }
  void refused(RefusalReason r) { refusals_[static_cast<size_t>(r)].add(); }
  // A verdict: its action, the time since the content ended (final scan
  // and DNS checks), and the refusal a reject or greylist reply is.
  void verdict(std::string_view action, int64_t started_ns);
  void delivery(delivery::Outcome o, uint64_t recipients = 1) {
    deliveries_[delivery_index(o)].add(recipients);
  }
  // The shard's 200 ms tick: how late it fired is the loop's lag.
  void tick(int64_t now_ns, int64_t period_ns);
  // Written by the shard's storage writer.
  Histogram& commit() { return commit_; }

  // Read side (the metrics thread).
  uint64_t accepted() const { return accepted_.value(); }
  uint64_t refusals(size_t i) const { return refusals_[i].value(); }
  uint64_t messages(size_t i) const { return messages_[i].value(); }
  uint64_t deliveries(size_t i) const { return deliveries_[i].value(); }
  const Histogram& scan_time() const { return scan_; }
  const Histogram& commit_time() const { return commit_; }
  // The largest lag of the current 5 s window and the one before it.
  int64_t loop_lag_ns() const { return static_cast<int64_t>(lag_published_.value()); }

 private:
  Counter accepted_;
  std::array<Counter, kActionNames.size()> messages_;
  std::array<Counter, kRefusalNames.size()> refusals_;
  std::array<Counter, kDeliveryNames.size()> deliveries_;
  Histogram scan_;
  Histogram commit_;
  Counter lag_published_;
  // The shard thread's own.
  int64_t last_tick_ns_ = 0;
  int64_t window_start_ns_ = 0;
  int64_t window_max_ns_ = 0;
};

// What one scrape shows, gathered by the metrics thread.
struct MetricsSnapshot {
  std::string version;
  int64_t start_unix_ms = 0;
  int64_t now_unix_ms = 0;
  uint64_t sessions = 0;
  std::vector<const ShardMetrics*> shards;
  bool queue_known = false;     // false when a spool could not be read
  uint64_t queue_messages = 0;
  int64_t queue_oldest_ms = 0;  // received time of the oldest entry, 0 when empty
  struct Bundle {
    uint64_t id = 0;
    std::string name, digest;
    size_t rules = 0;
  };
  std::optional<Bundle> bundle;
};

// The Prometheus text exposition format (version 0.0.4): a family is its
// HELP and TYPE lines followed by its samples.
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help);
  // `labels` as name/value pairs; values are escaped here.
  void sample(std::string_view name, std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              double value);
  void sample(std::string_view name, double value) { sample(name, {}, value); }
  void histogram(std::string_view name, std::string_view help, const Histogram::Snapshot& h);
  const std::string& text() const { return out_; }

 private:
  std::string out_;
};

// A label value with backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view v);
// A sample value: integers without a fraction or exponent, +Inf, NaN.
std::string format_sample_value(double v);

std::string render_metrics(const MetricsSnapshot& s);

}  // namespace mxguard::engine
