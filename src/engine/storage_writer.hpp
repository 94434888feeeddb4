// A shard's storage writer: a thread that owns the spool env's write
// transactions, commits every message handed over since the last commit in
// one transaction (group commit) and posts completions back through an
// eventfd the shard's ring is reading.
//
// A completion (the 250 after DATA) is posted only when its commit is
// durable. The spool is opened with deferred meta sync, so a commit costs one
// fsync instead of two: under load the next batch's commit, whose data sync
// also writes out the previous meta page, makes the previous batch durable;
// when nothing else is waiting the writer syncs at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "metrics.hpp"
#include "mxguard/core/config.hpp"
#include "mxguard/smtp/session.hpp"
#include "mxguard/store/config_store.hpp"
#include "mxguard/store/greylist.hpp"
#include "mxguard/store/spool.hpp"

namespace mxguard::engine {

class StorageWriter {
 public:
  struct Completion {
    uint64_t token;  // the shard's connection reference (slot + generation)
    bool ok;
    std::string id;
    uint64_t size;
    size_t batch;       // messages in the commit that held it
    double commit_ms;   // duration of that commit
  };

  StorageWriter(std::unique_ptr<store::Spool> spool, int notify_fd, unsigned shard, Millis commit_delay,
                store::GreylistStore* greylist = nullptr, Millis greylist_window = Millis{0});
  // Quarantine retention: between batches, at most every `interval`, the
  // writer drops quarantined mail older than its domain's quarantine_days.
  // Call before the first submit.
  void set_purge(const store::ConfigStore* config, Millis interval);
  // Where each commit's duration goes (/metrics); call before the first submit.
  void set_commit_histogram(Histogram* h) { commit_histogram_ = h; }
  ~StorageWriter();
  StorageWriter(const StorageWriter&) = delete;

  // A message to store; `feed` (JSON, may be empty) goes into the same commit.
  void submit(uint64_t token, std::unique_ptr<smtp::FinishedMessage> msg, std::string feed = {});
  // Work that has no reply waiting on it: a feed entry for a refused message,
  // greylist triplets seen now. Written with the next batch.
  void submit_side(std::string feed, std::vector<std::pair<std::string, int64_t>> triplets);
  // Tracking events: they ride in the next batch commit; when only events
  // wait, the writer commits them at most about once a second (no fsync of
  // their own per event). Events older than tracking_days are purged with
  // the quarantine purge.
  void submit_event(store::TrackEvent event);
  void set_tracking_days(unsigned days) { tracking_days_ = days; }
  // Delivery results and new messages (DSNs) to commit; the ids of the
  // updated messages come back through take_applied() once committed (or
  // failed: the queue then still says what it said before).
  void submit_delivery(std::vector<store::DeliveryUpdate> updates, std::vector<store::NewMessage> added);
  // Completions ready for the shard; call after the eventfd fired.
  void take_completions(std::vector<Completion>& out);
  void take_applied(std::vector<std::string>& ids);
  // Read access for the shard's thread (LMDB readers do not block the writer).
  const store::Spool& spool() const { return *spool_; }
  size_t in_flight() const;
  // Commits what is pending, then stops the thread.
  void stop();

 private:
  struct Job {
    uint64_t token;
    std::unique_ptr<smtp::FinishedMessage> msg;
  };
  struct Side {
    std::vector<std::string> feed;
    std::vector<std::pair<std::string, int64_t>> triplets;
    std::vector<store::DeliveryUpdate> updates;
    std::vector<store::NewMessage> added;
    bool empty() const { return feed.empty() && triplets.empty() && updates.empty() && added.empty(); }
  };
  void run();
  void maybe_purge();
  // Posts completions to the shard and wakes it.
  void post(std::vector<Completion>& completions);
  void notify();  // wakes the shard (eventfd)
  // Posts the committed batch waiting for its meta page to reach the disk:
  // ok when a later commit has synced it, else after a sync of its own.
  void harden();

  std::unique_ptr<store::Spool> spool_;
  int notify_fd_;
  unsigned shard_;
  Millis commit_delay_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Job> pending_;
  Side side_;
  std::vector<store::TrackEvent> events_;
  std::chrono::steady_clock::time_point next_event_flush_{};
  unsigned tracking_days_ = 7;
  store::GreylistStore* greylist_;
  Millis greylist_window_;
  std::vector<Completion> done_;
  std::vector<std::string> applied_;
  const store::ConfigStore* config_ = nullptr;
  Millis purge_interval_{0};
  std::chrono::steady_clock::time_point next_purge_{};
  size_t in_flight_ = 0;
  bool stopping_ = false;
  // The writer thread's own: committed, not yet known to be durable.
  std::vector<Completion> unsynced_;
  Histogram* commit_histogram_ = nullptr;
  uint64_t unsynced_txn_ = 0;
  std::thread thread_;
};

}  // namespace mxguard::engine
