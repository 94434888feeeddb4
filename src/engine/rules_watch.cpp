// The bundle watcher: a pushed or rolled-back bundle reaches every shard.
#include "rules_watch.hpp"

#include <pthread.h>

#include "mxguard/core/log.hpp"
#include "mxguard/scan/active.hpp"

namespace mxguard::engine {

RulesWatcher::RulesWatcher(const store::ConfigStore& store, RulesHolder& holder, uint64_t active_seq)
    : store_(store), holder_(holder), seq_(active_seq) {
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

void RulesWatcher::run() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; })) {
    auto active = store_.active_bundle();
    if (!active || !*active || **active == seq_ || **active == failed_seq_) continue;
    uint64_t want = **active;
    lock.unlock();
    auto loaded = scan::load_bundle(store_, want);
    lock.lock();
    if (!loaded) {
      failed_seq_ = want;
      log::error("rules.load_failed", "bundle={} error={} keeping={}", want, log::q(loaded.error()), seq_);
      continue;
    }
    holder_.set(loaded->rules);
    holder_.set_in_force({want, loaded->info.name, loaded->info.digest, loaded->info.rules});
    log::info("rules.active", "bundle={} name={} rules={} digest={}", want, log::q(loaded->info.name),
              loaded->info.rules, loaded->info.digest.substr(0, 12));
    seq_ = want;
  }
}

}  // namespace mxguard::engine
