// A shard: one thread, one io_uring, its own listeners (SO_REUSEPORT), its
// sessions, its spool and storage writer. Shards share nothing mutable but
// the lock-free per-IP counters.
#pragma once

#include <liburing.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "conn_limiter.hpp"
#include "metrics.hpp"
#include "mxguard/bayes/bayes.hpp"
#include "mxguard/delivery/client.hpp"
#include "mxguard/dns/async_resolver.hpp"
#include "mxguard/scan/scanner.hpp"
#include "mxguard/store/callout_cache.hpp"
#include "mxguard/store/greylist.hpp"
#include "rules_watch.hpp"
#include "mxguard/core/config.hpp"
#include "mxguard/core/net.hpp"
#include "mxguard/core/result.hpp"
#include "mxguard/smtp/session.hpp"
#include "mxguard/store/config_store.hpp"
#include "storage_writer.hpp"
#include "tls.hpp"

namespace mxguard::engine {

struct EngineContext {
  const Config* config = nullptr;
  const store::ConfigStore* config_store = nullptr;
  SSL_CTX* tls = nullptr;  // null when [tls] is not configured
  ConnLimiter* limiter = nullptr;
  std::atomic<unsigned>* connections = nullptr;  // across shards
  RulesHolder* rules = nullptr;
  const bayes::Model* bayes = nullptr;
  store::GreylistStore* greylist = nullptr;
};

class Shard final : public smtp::SessionHost {
 public:
  Shard(unsigned index, const EngineContext& ctx, std::vector<int> listen_fds);
  ~Shard() override;
  Shard(const Shard&) = delete;

  // Sets up the ring, buffers, spool and writer; the error says why not.
  Status init();
  void run();
  void request_stop();  // any thread
  // Counts the shard's timer ticks (every 200 ms while its loop runs); the
  // main thread pings the systemd watchdog only while every shard's count moves.
  uint64_t heartbeat() const { return heartbeat_.load(std::memory_order_relaxed); }
  // For the monitor thread: the shard's counters, and its spool (after init()).
  const ShardMetrics& metrics() const { return metrics_; }
  const store::Spool* spool() const { return writer_ ? &writer_->spool() : nullptr; }

  // SessionHost
  bool client_blocked(std::string_view client_ip) override;
  smtp::SenderDecision check_sender(const smtp::Mailbox& sender, std::string_view client_ip) override;
  smtp::RcptDecision check_recipient(const smtp::Mailbox& rcpt, const smtp::Mailbox& sender,
                                     std::string_view client_ip) override;
  std::variant<smtp::Mailbox, smtp::RcptDecision> postmaster() override;
  std::string new_message_id() override;
  int64_t now_ms() override { return now_ms_; }
  bool allow_message(uint32_t slot);

 private:
  struct Conn;
  struct ConnHost;
  struct Verdict;
  struct Route;
  struct Delivery;
  struct Job;
  struct Outbound;
  struct RouteState;
  enum Op : uint8_t {
    kAccept = 1, kRecv, kSend, kCancel, kWriterEvent, kStopEvent, kTick, kResolver,
    kOutConnect, kOutRecv, kOutSend,
  };

  static uint64_t make_ud(Op op, uint32_t gen, uint32_t slot) {
    return (uint64_t{op} << 56) | (uint64_t{gen & 0xffffffu} << 32) | slot;
  }
  io_uring_sqe* sqe();
  Conn* lookup(uint32_t slot, uint32_t gen);
  uint64_t token(uint32_t slot) const;

  void arm_accept(size_t pending);  // one of kAcceptsPerListener accepts of a listener
  void arm_recv(uint32_t slot);
  void arm_event_read(Op op, int fd, uint64_t* buf);
  void arm_tick();
  void recycle_buffer(uint16_t bid);
  void close_fixed(int index);

  // Why a connection or command was refused by a limit; logged at most once
  // a second per reason, with the count since the last line.
  enum class Refusal : uint8_t { kPerClient, kConnectionRate, kMessageRate, kCapacity, kCount };
  void note_refusal(Refusal why, const IpAddress& client);
  void flush_refusals(bool force);
  bool client_allowlisted(const IpAddress& client);
  void update_deadlines(Conn& c);
  bool idle_expired(const Conn& c, const SmtpConfig& lim) const;
  bool data_too_slow(Conn& c, const SmtpConfig& lim);

  void on_accept(size_t pending, int res);
  void on_recv(uint32_t slot, uint32_t gen, int res, uint32_t flags);
  void on_send(uint32_t slot, uint32_t gen, int res);
  void on_writer_event();
  void on_tick();
  void begin_shutdown();

  void deliver_input(uint32_t slot, std::string_view data);
  void after_session(uint32_t slot);
  void start_send(uint32_t slot);
  void begin_close(uint32_t slot);
  void maybe_finalize(uint32_t slot);
  void update_clock();

  // Tracking (shard_track.cpp): every decision becomes an event in the
  // spool env (through the storage writer, riding its next commit) and, for
  // refusals, a log line.
  uint64_t next_session_id();
  std::string session_reference(uint32_t slot) const;
  void track(store::TrackEvent e);
  void track_refusal(uint32_t slot, const smtp::Refusal& r);
  void track_connection_refused(const IpAddress& client, std::string_view decision, std::string_view reply);
  void track_verdict(const Conn& c, const store::Envelope& env, std::string_view action, double score,
                     const std::string& reasons, const std::vector<std::string>& quarantined);
  void track_delivery(const store::Envelope& env, std::string_view decision, unsigned code, std::string reason,
                      std::vector<std::string> recipients);

  // Scanning (shard_scan.cpp): content is scanned as it arrives, the checks
  // that need DNS run when the message is complete, then the verdict.
  void refresh_rules();
  void feed_scan(Conn& c);
  void begin_verdict(uint32_t slot, std::unique_ptr<smtp::FinishedMessage> msg);
  void start_checks(uint32_t slot, Verdict& v);
  void check_done(uint64_t token, uint32_t serial);
  void finish_verdict(uint32_t slot);
  void arm_resolver();
  void on_resolver(int res, uint32_t flags);

  // Delivery (shard_delivery.cpp): the queue of this shard's spool, sent to
  // each domain's backend over outbound connections on the same ring.
  void run_queue();
  // recipients=callout (shard_delivery.cpp).
  smtp::RcptDecision check_recipient_at(uint32_t slot, const smtp::Mailbox& rcpt, const smtp::Mailbox& sender,
                                        std::string_view client_ip);
  smtp::RcptDecision start_callout(uint32_t slot, const std::string& address, const std::string& domain);
  void callout_done(const Job& job, const std::vector<delivery::RcptResult>& results);
  int64_t out_timeout(const Outbound& o, bool connecting) const;
  void start_fresh(const std::string& id);
  void refill();
  void start_delivery(const std::string& id, bool only_if_due = false);
  std::optional<Route> route_for(const std::string& domain, const store::Envelope& e, std::string& why);
  void dispatch(std::unique_ptr<Job> job);
  void open_outbound(std::unique_ptr<Job> job);
  void reuse_outbound(uint32_t slot, std::unique_ptr<Job> job);
  void park_outbound(uint32_t slot);
  void quit_outbound(uint32_t slot);
  void resolve_outbound(uint32_t slot);
  void connect_next(uint32_t slot);
  void lookup_tlsa(uint32_t slot);
  delivery::ClientJob client_job_for(const Outbound& o, const Job& job) const;
  TlsClientOptions tls_options(const Outbound& o) const;
  void on_out_connect(uint32_t slot, uint32_t gen, int res);
  void on_out_recv(uint32_t slot, uint32_t gen, int res);
  void idle_received(uint32_t slot, std::string_view data);
  void on_out_send(uint32_t slot, uint32_t gen, int res);
  void arm_out_recv(uint32_t slot);
  void pump_outbound(uint32_t slot);
  void move_output(Outbound& o);
  void send_out(uint32_t slot);
  void arm_out_send(uint32_t slot);
  void group_done(const std::string& id);
  void job_finished(uint32_t slot);
  void fail_job(std::unique_ptr<Job> job, delivery::Outcome outcome, std::string_view enhanced, std::string_view why);
  void record_results(const Job& job, const std::vector<delivery::RcptResult>& results, std::string_view peer);
  void finish_delivery(const std::string& id);
  void close_outbound(uint32_t slot);
  void maybe_release_outbound(uint32_t slot);
  void outbound_tick();
  delivery::ClientJob client_job(const Job& job) const;
  Outbound* out_lookup(uint32_t slot, uint32_t gen);

  unsigned index_;
  EngineContext ctx_;
  std::vector<int> listen_fds_;
  // Each listener keeps kAcceptsPerListener accepts armed, each with its own
  // peer address buffer; a connection goes straight into the ring's
  // fixed-file table (no descriptor, no getpeername, no table update).
  static constexpr size_t kAcceptsPerListener = 8;
  struct PendingAccept {
    sockaddr_storage peer{};
    socklen_t peer_len = 0;
  };
  std::vector<PendingAccept> accepts_;  // listener * kAcceptsPerListener + i
  std::vector<size_t> accept_paused_;   // accepts to re-arm on the next tick
  smtp::SessionParams session_params_;

  io_uring ring_{};
  bool ring_ready_ = false;
  io_uring_buf_ring* buf_ring_ = nullptr;
  size_t buf_ring_bytes_ = 0;
  char* buffers_ = nullptr;
  size_t buffers_bytes_ = 0;
  unsigned fixed_files_ = 0;  // size of the ring's fixed-file table (0: plain descriptors)

  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<uint32_t> free_slots_;
  size_t active_ = 0;

  int writer_fd_ = -1;
  int stop_fd_ = -1;
  uint64_t writer_buf_ = 0;
  uint64_t stop_buf_ = 0;
  std::unique_ptr<StorageWriter> writer_;
  std::unique_ptr<store::ConfigReader> config_reader_;
  std::unique_ptr<scan::Scanner> scanner_;
  uint64_t rules_generation_ = 0;
  std::unique_ptr<dns::AsyncResolver> resolver_;
  // SPF, DKIM keys, DMARC, DNSBL and HELO run only with a resolver and
  // scan.network_checks on; the resolver still serves delivery without them.
  bool network_checks() const { return resolver_ && ctx_.config->scan.network_checks; }
  uint32_t verdict_serial_ = 0;
  std::vector<StorageWriter::Completion> completions_;
  std::string plain_scratch_;

  std::atomic<uint64_t> heartbeat_{0};
  ShardMetrics metrics_;
  // Session ids for tracking: the start time in microseconds plus a count,
  // unique across restarts. Connection refusals (no session) are tracked at
  // most kTrackRefusalsPerSecond a second; the rest are counted.
  uint64_t session_base_ = 0;
  uint64_t session_seq_ = 0;
  int64_t track_window_ms_ = 0;
  unsigned track_window_count_ = 0;
  uint64_t track_suppressed_ = 0;
  SslCtxPtr client_tls_;
  store::CalloutCache* callout_ = nullptr;
  std::vector<std::unique_ptr<Outbound>> outs_;
  std::vector<uint32_t> free_outs_;
  size_t outs_active_ = 0;
  std::unordered_map<std::string, Delivery> deliveries_;
  std::unordered_set<std::string> busy_;  // in delivery, or its result not yet committed
  std::unordered_map<std::string, RouteState> routes_;
  std::vector<std::string> applied_;
  int64_t next_queue_scan_ms_ = 0;
  // Messages stored while max_messages were in delivery, in arrival order;
  // each freed place takes the next at once (bounded: beyond it the queue
  // poll finds them).
  std::deque<std::string> fresh_backlog_;
  bool refilling_ = false;
  uint64_t jitter_state_ = 0;

  struct RefusalLog {
    uint64_t count = 0;
    std::string last_client;
  };
  RefusalLog refusals_[static_cast<size_t>(Refusal::kCount)];
  int64_t refusals_logged_ms_ = 0;

  int64_t now_ms_ = 0;
  int64_t last_id_us_ = 0;
  bool stopping_ = false;
  int64_t stop_deadline_ms_ = 0;
  __kernel_timespec tick_ts_{};
};

}  // namespace mxguard::engine
