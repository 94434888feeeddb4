// The rules every shard scans with: the active bundle, loaded once by a
// watcher thread and handed to the shards through a generation counter, so
// a pushed bundle swaps in without a restart and without dropping a session.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "mxguard/scan/active.hpp"
#include "mxguard/scan/bundle.hpp"
#include "mxguard/store/config_store.hpp"

namespace mxguard::engine {

class RulesHolder {
 public:
  // Shards compare generation() with what they have and call get() only
  // when it moved: the hot path is one atomic load.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  std::shared_ptr<const scan::CompiledRules> get() const {
    std::lock_guard lock(mu_);
    return rules_;
  }
  void set(std::shared_ptr<const scan::CompiledRules> rules) {
    std::lock_guard lock(mu_);
    rules_ = std::move(rules);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  // Which bundle that is, for /metrics and the status file.
  struct InForce {
    uint64_t seq = 0;
    std::string name, digest;
    size_t rules = 0;
  };
  void set_in_force(InForce f) {
    std::lock_guard lock(mu_);
    in_force_ = std::move(f);
  }
  InForce in_force() const {
    std::lock_guard lock(mu_);
    return in_force_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const scan::CompiledRules> rules_;
  InForce in_force_;
  std::atomic<uint64_t> generation_{0};
};

// Publishes the active bundle with the operator's local layer on top, then
// polls the config store once a second: a new active bundle number, or a
// new local rules generation (`mxguard rules local reload`), is loaded
// (signature checked, databases deserialised, the local layer compiled) off
// the shards and published. A bundle or a local layer that fails is logged
// and the set in force stays.
class RulesWatcher {
 public:
  RulesWatcher(const store::ConfigStore& store, RulesHolder& holder, std::string local_dir, scan::ActiveRules active);
  ~RulesWatcher();
  RulesWatcher(const RulesWatcher&) = delete;

 private:
  void run();
  // Puts the local layer on `base` and publishes it; false when the layer fails.
  bool publish(const scan::ActiveRules& base, uint64_t local_gen, bool at_start);

  const store::ConfigStore& store_;
  RulesHolder& holder_;
  std::string local_dir_;
  scan::ActiveRules base_;     // the bundle in force, without the local layer
  uint64_t local_gen_ = 0;     // the local rules generation in force
  uint64_t failed_seq_ = 0;    // a bundle that did not load (not tried again)
  std::pair<uint64_t, uint64_t> failed_layer_{0, 0};  // bundle and generation whose layer failed
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace mxguard::engine
