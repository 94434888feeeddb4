// What shard.cpp and shard_scan.cpp share: a connection's state and a
// message waiting for its verdict.
#pragma once

#include <memory>
#include <string>
#include <vector>

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
};

struct Shard::Conn {
  uint32_t gen = 0;
  int fd = -1;         // a fixed-file index when `fixed`, else a descriptor
  bool fixed = false;
  int limiter_bucket = -1;
  bool in_use = false;
  bool recv_armed = false;
  bool send_inflight = false;
  bool closing = false;
  bool close_after_flush = false;  // refused before a session existed
  int64_t started_ms = 0;
  int64_t last_activity_ms = 0;
  int64_t greet_at_ms = 0;
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

}  // namespace mxguard::engine
