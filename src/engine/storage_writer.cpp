// Group commit: the batch is whatever arrived while the previous fsync ran,
// so it grows with the load and an idle system commits each message at once.
#include "storage_writer.hpp"

#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <limits>

#include "mxguard/store/quarantine.hpp"

#include "mxguard/core/log.hpp"

namespace mxguard::engine {

StorageWriter::StorageWriter(std::unique_ptr<store::Spool> spool, int notify_fd, unsigned shard,
                             Millis commit_delay, store::GreylistStore* greylist, Millis greylist_window)
    : spool_(std::move(spool)),
      notify_fd_(notify_fd),
      shard_(shard),
      commit_delay_(commit_delay),
      greylist_(greylist),
      greylist_window_(greylist_window) {
  thread_ = std::thread([this] { run(); });
  std::string name = "mxg-store-" + std::to_string(shard_);
  pthread_setname_np(thread_.native_handle(), name.c_str());
}

StorageWriter::~StorageWriter() { stop(); }

void StorageWriter::set_purge(const store::ConfigStore* config, Millis interval) {
  std::lock_guard lock(mu_);
  config_ = config;
  purge_interval_ = interval;
  // Not all shards at once after a start.
  next_purge_ = std::chrono::steady_clock::now() + std::chrono::seconds(10 + 7 * shard_);
}

// Runs on the writer thread between commits: the purge's own short write
// transactions never interleave with a batch.
void StorageWriter::maybe_purge() {
  if (!config_ || purge_interval_.count() <= 0 || std::chrono::steady_clock::now() < next_purge_) return;
  next_purge_ = std::chrono::steady_clock::now() + purge_interval_;
  auto days_for = [this](std::string_view domain) -> unsigned {
    auto d = config_->domain(domain);
    if (!d) return std::numeric_limits<unsigned>::max();  // unknown retention: keep
    return *d ? (*d)->quarantine_days : 30u;
  };
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  auto n = store::quarantine_purge(*spool_, now, days_for);
  if (!n) log::error("quarantine.purge_failed", "shard={} error={}", shard_, log::q(n.error()));
  else if (*n > 0) log::info("quarantine.purged", "shard={} messages={}", shard_, *n);
  auto ev = spool_->purge_events(now - int64_t{tracking_days_} * 86'400'000);
  if (!ev) log::error("track.purge_failed", "shard={} error={}", shard_, log::q(ev.error()));
  else if (*ev > 0) log::info("track.purged", "shard={} events={}", shard_, *ev);
}

void StorageWriter::submit(uint64_t token, std::unique_ptr<smtp::FinishedMessage> msg, std::string feed) {
  {
    std::lock_guard lock(mu_);
    pending_.push_back(Job{token, std::move(msg)});
    if (!feed.empty()) side_.feed.push_back(std::move(feed));
    ++in_flight_;
  }
  cv_.notify_one();
}

void StorageWriter::submit_side(std::string feed, std::vector<std::pair<std::string, int64_t>> triplets) {
  {
    std::lock_guard lock(mu_);
    if (!feed.empty()) side_.feed.push_back(std::move(feed));
    for (auto& t : triplets) side_.triplets.push_back(std::move(t));
  }
  cv_.notify_one();
}

void StorageWriter::submit_event(store::TrackEvent event) {
  std::lock_guard lock(mu_);
  events_.push_back(std::move(event));
  // No wake-up: the writer's one-second tick or the next batch takes it.
}

void StorageWriter::submit_delivery(std::vector<store::DeliveryUpdate> updates,
                                    std::vector<store::NewMessage> added) {
  {
    std::lock_guard lock(mu_);
    for (auto& u : updates) side_.updates.push_back(std::move(u));
    for (auto& m : added) side_.added.push_back(std::move(m));
  }
  cv_.notify_one();
}

void StorageWriter::take_applied(std::vector<std::string>& ids) {
  std::lock_guard lock(mu_);
  ids.swap(applied_);
  applied_.clear();
}

void StorageWriter::take_completions(std::vector<Completion>& out) {
  std::lock_guard lock(mu_);
  out.swap(done_);
  done_.clear();
  in_flight_ -= out.size();
}

size_t StorageWriter::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_;
}

void StorageWriter::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void StorageWriter::post(std::vector<Completion>& completions) {
  if (completions.empty()) return;
  {
    std::lock_guard lock(mu_);
    for (auto& c : completions) done_.push_back(std::move(c));
  }
  completions.clear();
  notify();
}

void StorageWriter::notify() {
  uint64_t one = 1;
  if (::write(notify_fd_, &one, sizeof one) != sizeof one) log::error("spool.notify_failed", "shard={}", shard_);
}

void StorageWriter::harden() {
  if (unsynced_.empty()) return;
  bool ok = spool_->last_txnid() > unsynced_txn_;
  if (!ok) {
    Status st = spool_->sync();
    if (!st) log::error("spool.sync_failed", "shard={} batch={} error={}", shard_, unsynced_.size(), log::q(st.error()));
    ok = st.ok();
  }
  for (auto& c : unsynced_) c.ok = ok;
  post(unsynced_);
}

void StorageWriter::run() {
  std::vector<Job> batch;
  Side side;
  std::vector<store::Spool::Record> records;
  std::vector<Completion> completions;
  std::vector<store::TrackEvent> events;
  while (true) {
    {
      std::unique_lock lock(mu_);
      auto events_due = [&] {
        return !events_.empty() && (stopping_ || std::chrono::steady_clock::now() >= next_event_flush_);
      };
      auto idle = [&] { return pending_.empty() && side_.empty() && !events_due(); };
      // Wakes at least once a second to run the quarantine purge when due;
      // with a batch not yet durable, syncs it at once unless more work waits.
      if (unsynced_.empty())
        cv_.wait_for(lock, std::chrono::seconds(1), [&] { return !idle() || stopping_; });
      if (idle()) {
        const bool stop = stopping_;
        lock.unlock();
        harden();
        if (stop) return;
        maybe_purge();
        continue;
      }
    }
    maybe_purge();  // under steady load the writer is never idle
    if (commit_delay_.count() > 0) std::this_thread::sleep_for(commit_delay_);
    {
      std::lock_guard lock(mu_);
      batch.swap(pending_);
      std::swap(side, side_);
      events.swap(events_);
    }
    if (greylist_ && !side.triplets.empty()) {
      if (auto gs = greylist_->record(side.triplets, greylist_window_.count()); !gs)
        log::error("greylist.record_failed", "shard={} error={}", shard_, log::q(gs.error()));
    }
    side.triplets.clear();
    records.clear();
    for (const Job& j : batch) records.push_back({&j.msg->envelope, j.msg->data});
    const bool updates = !side.updates.empty() || !side.added.empty();
    if (batch.empty() && side.feed.empty() && !updates && events.empty()) continue;
    // New messages, feed entries, delivery results and events share one commit.
    auto t0 = std::chrono::steady_clock::now();
    Status st = spool_->commit(records, side.feed, side.updates, side.added, events);
    if (commit_histogram_) commit_histogram_->observe_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
    if (!st && !events.empty())
      log::error("track.commit_failed", "shard={} events={} error={}", shard_, events.size(), log::q(st.error()));
    events.clear();
    next_event_flush_ = t0 + std::chrono::seconds(1);
    side.feed.clear();
    if (updates) {
      if (!st)
        log::error("queue.commit_failed", "shard={} updates={} error={}", shard_, side.updates.size(),
                   log::q(st.error()));
      {
        std::lock_guard lock(mu_);
        for (auto& u : side.updates) applied_.push_back(std::move(u.id));
      }
      side.updates.clear();
      side.added.clear();
    }
    if (batch.empty()) {
      if (!st && !updates) log::error("feed.commit_failed", "shard={} error={}", shard_, log::q(st.error()));
      if (updates) notify();
      continue;  // nothing else waits for a side-only commit
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!st) log::error("spool.commit_failed", "shard={} batch={} error={}", shard_, batch.size(), log::q(st.error()));
    completions.clear();
    for (const Job& j : batch)
      completions.push_back(Completion{j.token, st.ok(), j.msg->envelope.id, j.msg->envelope.size, batch.size(), ms});
    batch.clear();  // frees the message bodies here, off the shard
    // This commit's data sync (if it committed) also wrote the previous
    // batch's meta page; a failed commit waits for nothing.
    harden();
    if (!st) {
      post(completions);
      continue;
    }
    unsynced_.swap(completions);
    unsynced_txn_ = spool_->last_txnid();
  }
}

}  // namespace mxguard::engine
