// The engine's monitor thread, never a shard: serves /metrics on
// metrics.listen through libmicrohttpd, writes the status file the console's
// `mxguard status` reads, and at start says when dns.servers does not answer.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "metrics.hpp"
#include "mxguard/core/config.hpp"
#include "mxguard/core/result.hpp"
#include "mxguard/store/spool.hpp"
#include "rules_watch.hpp"

struct MHD_Daemon;

namespace mxguard::engine {

// The file in state_dir the monitor rewrites (write and rename) every second.
inline constexpr const char* kStatusFile = "engine-status.json";

struct MonitorSources {
  std::vector<const ShardMetrics*> shards;
  std::vector<const store::Spool*> spools;  // read on the monitor thread only
  const std::atomic<unsigned>* connections = nullptr;
  const RulesHolder* rules = nullptr;
  int64_t start_unix_ms = 0;
  std::string version;
};

class Monitor {
 public:
  // Binds every metrics.listen address now, so a port in use stops the
  // start with a message naming it.
  static Result<std::unique_ptr<Monitor>> create(const Config& cfg);
  ~Monitor();  // stops the thread and removes the status file
  Monitor(const Monitor&) = delete;

  void start(MonitorSources sources);

 private:
  explicit Monitor(const Config& cfg) : cfg_(cfg) {}
  void run();
  void check_dns();
  void write_status();
  MetricsSnapshot snapshot() const;

 public:
  // The body of GET /metrics (called by libmicrohttpd on the monitor thread).
  std::string metrics_text() const;

 private:
  const Config& cfg_;
  std::vector<MHD_Daemon*> daemons_;
  MonitorSources src_;
  int stop_fd_ = -1;
  bool status_failing_ = false;  // the monitor thread's own
  std::thread thread_;
};

}  // namespace mxguard::engine
