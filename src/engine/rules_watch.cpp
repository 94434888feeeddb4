// The bundle watcher: a pushed, activated or rolled-back bundle, and a
// reloaded local layer, reach every shard.
#include "rules_watch.hpp"

#include <pthread.h>

#include "mxguard/core/log.hpp"

namespace mxguard::engine {

RulesWatcher::RulesWatcher(const store::ConfigStore& store, RulesHolder& holder, std::string local_dir,
                           scan::ActiveRules active)
    : store_(store), holder_(holder), local_dir_(std::move(local_dir)) {
  auto gen = store_.local_rules_generation();
  uint64_t g = gen ? *gen : 0;
  if (!publish(active, g, true)) {
    // No earlier good set to keep at start: the bundle alone, rather than no rules.
    holder_.set(active.rules);
    holder_.set_in_force({active.seq, active.info.name, active.info.digest, active.info.rules});
    base_ = std::move(active);
    local_gen_ = g;
    failed_layer_ = {base_.seq, g};
  }
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "mxg-rules");
}

RulesWatcher::~RulesWatcher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool RulesWatcher::publish(const scan::ActiveRules& base, uint64_t local_gen, bool at_start) {
  scan::RuleFile layer;
  auto layered = scan::with_local_layer(base.rules, local_dir_, &layer);
  if (!layered) {
    log::error("rules.local_failed", "bundle={} local_dir={} error={} keeping={}", base.seq, log::q(local_dir_),
               log::q(layered.error()), at_start ? "bundle_only" : "previous");
    return false;
  }
  holder_.set(*layered);
  holder_.set_in_force({base.seq, base.info.name, base.info.digest, base.info.rules});
  bool bundle_changed = at_start || base.seq != base_.seq;
  if (bundle_changed)
    log::info("rules.active", "bundle={} name={} rules={} digest={} local_rules={} local_overrides={}", base.seq,
              log::q(base.info.name), base.info.rules, base.info.digest.substr(0, 12), layer.rules.size(),
              layer.overrides.size());
  else
    log::info("rules.local_reloaded", "bundle={} local_dir={} local_rules={} local_overrides={}", base.seq,
              log::q(local_dir_), layer.rules.size(), layer.overrides.size());
  base_ = base;
  local_gen_ = local_gen;
  return true;
}

// Only stop_ is shared with other threads; the rest is this thread's, so the
// loading and compiling run without the lock (a stop does not wait for them
// to start).
void RulesWatcher::run() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; })) return;
    }
    auto active = store_.active_bundle();
    auto gen = store_.local_rules_generation();
    if (!active || !*active || !gen) continue;
    uint64_t want = **active;
    if (want == failed_seq_) continue;
    if (want == base_.seq && *gen == local_gen_) continue;
    if (failed_layer_ == std::pair{want, *gen}) continue;
    Result<scan::ActiveRules> loaded =
        want == base_.seq ? Result<scan::ActiveRules>(base_) : scan::load_bundle(store_, want);
    if (!loaded) {
      failed_seq_ = want;
      log::error("rules.load_failed", "bundle={} error={} keeping={}", want, log::q(loaded.error()), base_.seq);
      continue;
    }
    if (!publish(*loaded, *gen, false)) failed_layer_ = {want, *gen};
  }
}

}  // namespace mxguard::engine
