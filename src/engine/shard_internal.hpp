// What shard.cpp and shard_scan.cpp share: a connection's state and a
// message waiting for its verdict.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <sys/socket.h>

#include <deque>

#include "mxguard/core/net.hpp"
#include "mxguard/delivery/client.hpp"
#include "mxguard/delivery/dsn.hpp"
#include "mxguard/dkim/dkim.hpp"
#include "mxguard/scan/scanner.hpp"
#include "mxguard/smtp/session.hpp"
#include "shard.hpp"
#include "tls.hpp"

namespace mxguard::engine {

struct Shard::Verdict {
  uint32_t serial = 0;  // callbacks of an older verdict on the same slot are ignored
  std::unique_ptr<smtp::FinishedMessage> msg;
  std::unique_ptr<scan::MessageScan> scan;
  scan::CheckResults checks;
  std::vector<std::string> dkim_names;
  std::vector<dkim::DkimKeyAnswer> dkim_answers;
  size_t dkim_pending = 0;
  bool spf_done = false;
  bool dmarc_started = false;
  unsigned outstanding = 0;  // checks still waiting for DNS
  int64_t started_ms = 0;
  int64_t started_ns = 0;  // steady clock, for the scan time histogram
};

// Each connection's view of the shard as a SessionHost: the same answers,
// but a RCPT that needs a callout knows which connection to resume.
struct Shard::ConnHost final : smtp::SessionHost {
  ConnHost(Shard& s, uint32_t slot) : shard(s), slot(slot) {}
  bool client_blocked(std::string_view ip) override { return shard.client_blocked(ip); }
  smtp::SenderDecision check_sender(const smtp::Mailbox& s, std::string_view ip) override {
    return shard.check_sender(s, ip);
  }
  smtp::RcptDecision check_recipient(const smtp::Mailbox& r, const smtp::Mailbox& s, std::string_view ip) override {
    return shard.check_recipient_at(slot, r, s, ip);
  }
  std::variant<smtp::Mailbox, smtp::RcptDecision> postmaster() override { return shard.postmaster(); }
  std::string new_message_id() override { return shard.new_message_id(); }
  int64_t now_ms() override { return shard.now_ms(); }
  bool allow_message() override { return shard.allow_message(slot); }
  void refused(const smtp::Refusal& r) override { shard.track_refusal(slot, r); }
  std::string session_reference() override { return shard.session_reference(slot); }
  Shard& shard;
  uint32_t slot;
};

struct Shard::Conn {
  uint32_t gen = 0;
  std::unique_ptr<ConnHost> host;
  int fd = -1;         // a fixed-file index when `fixed`, else a descriptor
  bool fixed = false;
  ClientKey client;       // as the per-client limits count it
  IpAddress client_ip;
  bool counted = false;   // holds a place in the limiter until finalized
  bool in_use = false;
  bool recv_armed = false;
  bool send_inflight = false;
  bool closing = false;
  bool close_after_flush = false;  // refused before a session existed
  uint64_t session_id = 0;  // for tracking (next_session_id)
  int64_t started_ms = 0;
  int64_t last_activity_ms = 0;
  int64_t greet_at_ms = 0;
  int64_t line_started_ms = 0;  // first byte of an unfinished command line (0: none)
  int64_t tls_started_ms = 0;   // STARTTLS handshake under way since
  int64_t data_window_ms = 0;   // start of the current min_data_rate window (0: not in content)
  uint64_t data_window_bytes = 0;
  std::unique_ptr<smtp::Session> session;
  std::unique_ptr<TlsChannel> tls;
  std::string out;      // wire bytes waiting for the send in flight to finish
  std::string sending;  // wire bytes of the send in flight
  size_t send_off = 0;
  // The message being received, scanned as it streams in.
  std::unique_ptr<scan::MessageScan> scan;
  std::string scan_id;
  size_t scanned = 0;
  // The finished message while its checks run and its verdict is decided.
  std::unique_ptr<Verdict> verdict;
};

// Where and how one group of recipients is delivered: a customer's backend,
// or (for the DSNs we send) the MX hosts of the recipient's domain.
struct Shard::Route {
  std::string key;   // connections are capped and reused per key
  std::string host;  // backend host name or address literal; the domain for MX routing
  uint16_t port = 25;
  bool mx = false;
  delivery::TlsPolicy tls = delivery::TlsPolicy::kMay;
  bool implicit_tls = false;
  std::string auth_user, auth_password;
};

// A message being delivered in this pass, until every group has a result.
struct Shard::Delivery {
  store::Envelope envelope;
  std::shared_ptr<const std::string> data;
  unsigned groups_left = 0;
  store::DeliveryUpdate update;
  std::vector<delivery::DsnRecipient> bounces;
  bool expired = false;
};

// The recipients of one message that share a route; or, for a probe, the
// recipient a session's RCPT waits on (recipients=callout).
struct Shard::Job {
  std::string id;
  bool probe = false;
  uint64_t conn_token = 0;  // probe: the inbound connection (slot + generation)
  Route route;
  std::vector<std::string> recipients;
  std::shared_ptr<const std::string> data;
};

// An outbound SMTP connection on the shard's ring.
struct Shard::Outbound {
  uint32_t gen = 0;
  bool in_use = false;
  int fd = -1;
  enum class Phase : uint8_t { kResolving, kConnecting, kTalking, kIdle } phase = Phase::kResolving;
  Route route;
  std::vector<IpAddress> addrs;  // in the order to try
  size_t next_addr = 0;
  std::string peer;              // "host[ip]:port" for logs and DSNs
  std::string last_error;        // why the previous address failed
  sockaddr_storage sa{};
  socklen_t sa_len = 0;
  std::unique_ptr<TlsChannel> tls;
  std::vector<TlsaRecord> tlsa;  // tls=dane with secure TLSA records: the peer must match one
  std::unique_ptr<delivery::ClientSession> session;
  std::unique_ptr<Job> job;
  std::string out, sending;
  size_t send_off = 0;
  bool connect_inflight = false, recv_inflight = false, send_inflight = false;
  bool closing = false;
  std::unique_ptr<char[]> rbuf;
  int64_t deadline_ms = 0;
};

// Per route: open connections (idle ones included), the idle ones that
// wait for a job (most recently parked last), and the jobs waiting for a
// connection.
struct Shard::RouteState {
  unsigned connections = 0;
  std::vector<uint32_t> idle;
  std::deque<std::unique_ptr<Job>> waiting;
};

}  // namespace mxguard::engine
