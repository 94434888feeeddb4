// The monitor thread (metrics_http.hpp): libmicrohttpd daemons driven by
// this thread's own select() loop, the status file, the DNS check at start.
#include "metrics_http.hpp"

#include <sys/eventfd.h>
#include <poll.h>
#include <unistd.h>

#include <microhttpd.h>
#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "listeners.hpp"
#include "mxguard/core/log.hpp"
#include "mxguard/dns/probe.hpp"

namespace mxguard::engine {

namespace {

constexpr auto kStatusInterval = std::chrono::seconds(1);
constexpr Millis kDnsProbeTimeout{2000};

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

MHD_Result reply(MHD_Connection* conn, unsigned code, const std::string& body, const char* type) {
  MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_Result ok = MHD_queue_response(conn, code, r);
  MHD_destroy_response(r);
  return ok;
}

MHD_Result on_request(void* cls, MHD_Connection* conn, const char* url, const char* method, const char*,
                      const char*, size_t* upload_size, void**) {
  const auto* m = static_cast<const Monitor*>(cls);
  std::string_view path = url, verb = method;
  if (*upload_size != 0) {
    *upload_size = 0;  // a body is not wanted; drop it
    return MHD_YES;
  }
  if (path != "/metrics") return reply(conn, MHD_HTTP_NOT_FOUND, "not found; metrics are at /metrics\n", "text/plain");
  if (verb != "GET" && verb != "HEAD") return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n", "text/plain");
  return reply(conn, MHD_HTTP_OK, m->metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace

Result<std::unique_ptr<Monitor>> Monitor::create(const Config& cfg) {
  std::unique_ptr<Monitor> m(new Monitor(cfg));
  for (const auto& a : cfg.metrics.listen) {
    auto fd = open_single_listener(a, "metrics.listen");
    if (!fd) return Error{fd.error()};
    unsigned flags = MHD_USE_ERROR_LOG | MHD_USE_EPOLL;
    if (a.host.find(':') != std::string::npos) flags |= MHD_USE_IPv6;
    MHD_Daemon* d = MHD_start_daemon(flags, 0, nullptr, nullptr, &on_request, m.get(), MHD_OPTION_LISTEN_SOCKET, *fd,
                                     MHD_OPTION_CONNECTION_LIMIT, 32u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                                     MHD_OPTION_END);
    if (!d) {
      ::close(*fd);
      return Error{fmt::format("metrics.listen {}: libmicrohttpd could not start", a.to_string())};
    }
    m->daemons_.push_back(d);
  }
  m->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (m->stop_fd_ < 0) return Error{"eventfd for the monitor thread"};
  return m;
}

Monitor::~Monitor() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (::write(stop_fd_, &one, sizeof one) != sizeof one) {
      // An eventfd written once cannot overflow.
    }
    thread_.join();
    std::remove(fmt::format("{}/{}", cfg_.state_dir, kStatusFile).c_str());
  }
  for (MHD_Daemon* d : daemons_) MHD_stop_daemon(d);  // closes its listening socket too
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void Monitor::start(MonitorSources sources) {
  src_ = std::move(sources);
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "mxg-monitor");
}

// One line when the resolver the checks wait on is not there: each message
// would otherwise wait dns.timeout for every lookup, silently.
void Monitor::check_dns() {
  if (!cfg_.scan.network_checks || cfg_.dns.servers.empty()) return;
  std::vector<std::string> failed;
  std::string why;
  for (const auto& s : cfg_.dns.servers) {
    dns::ProbeResult r = dns::probe_server(s, std::min(kDnsProbeTimeout, cfg_.dns.timeout));
    if (r.reachable) log::info("dns.reachable", "server={} rtt_ms={}", s, r.rtt_ms);
    if (r.reachable) continue;
    failed.push_back(s);
    if (why.empty()) why = r.error;
  }
  if (failed.empty()) return;
  std::string list;
  for (const auto& s : failed) list += (list.empty() ? "" : ",") + s;
  log::warn("dns.unreachable", "servers={} answered={}/{} error={} note={}", list,
            cfg_.dns.servers.size() - failed.size(), cfg_.dns.servers.size(), log::q(why),
            log::q(failed.size() == cfg_.dns.servers.size()
                       ? fmt::format("dns.servers does not answer: SPF, DKIM, DMARC, DNSBL and HELO checks wait up to "
                                     "dns.timeout ({} ms) on every message; fix dns.servers or set "
                                     "scan.network_checks = false",
                                     cfg_.dns.timeout.count())
                       : std::string("some of dns.servers do not answer; lookups may wait for them")));
}

MetricsSnapshot Monitor::snapshot() const {
  MetricsSnapshot s;
  s.version = src_.version;
  s.start_unix_ms = src_.start_unix_ms;
  s.now_unix_ms = unix_ms();
  s.sessions = src_.connections ? src_.connections->load(std::memory_order_relaxed) : 0;
  s.shards = src_.shards;
  s.queue_known = true;
  for (const store::Spool* sp : src_.spools) {
    auto q = sp ? sp->queue_stats() : Result<store::Spool::QueueStats>(Error{"no spool"});
    if (!q) {
      s.queue_known = false;
      log::error("metrics.queue_read_failed", "error={}", log::q(q.error()));
      break;
    }
    s.queue_messages += q->messages;
    if (q->oldest_received_ms > 0 && (s.queue_oldest_ms == 0 || q->oldest_received_ms < s.queue_oldest_ms))
      s.queue_oldest_ms = q->oldest_received_ms;
  }
  if (src_.rules) {
    RulesHolder::InForce b = src_.rules->in_force();
    if (!b.digest.empty()) s.bundle = MetricsSnapshot::Bundle{b.seq, b.name, b.digest, b.rules};
  }
  return s;
}

std::string Monitor::metrics_text() const { return render_metrics(snapshot()); }

// What `mxguard status` needs from a running engine and cannot read from
// LMDB itself; written to a temporary name and renamed, so a reader never
// sees half a file.
void Monitor::write_status() {
  nlohmann::ordered_json j;
  j["pid"] = static_cast<int64_t>(getpid());
  j["version"] = src_.version;
  j["started_ms"] = src_.start_unix_ms;
  j["updated_ms"] = unix_ms();
  j["shards"] = src_.shards.size();
  j["sessions"] = src_.connections ? src_.connections->load(std::memory_order_relaxed) : 0u;
  nlohmann::ordered_json lag = nlohmann::ordered_json::array();
  for (const ShardMetrics* m : src_.shards) lag.push_back(static_cast<double>(m->loop_lag_ns()) / 1e6);
  j["loop_lag_ms"] = lag;
  if (src_.rules) {
    RulesHolder::InForce b = src_.rules->in_force();
    j["bundle"] = {{"id", b.seq}, {"name", b.name}, {"digest", b.digest}, {"rules", b.rules}};
  }
  nlohmann::ordered_json listen = nlohmann::ordered_json::array();
  for (const auto& a : cfg_.metrics.listen) listen.push_back(a.to_string());
  j["metrics_listen"] = listen;
  std::string path = fmt::format("{}/{}", cfg_.state_dir, kStatusFile);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump() << '\n';
    if (!out) {
      // Once per failure streak (a full disk would otherwise log every second).
      if (!status_failing_) log::error("engine.status_write_failed", "path={}", log::q(tmp));
      status_failing_ = true;
      return;
    }
  }
  bool ok = std::rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok && !status_failing_) log::error("engine.status_write_failed", "path={}", log::q(path));
  status_failing_ = !ok;
}

void Monitor::run() {
  write_status();
  check_dns();
  auto next_status = std::chrono::steady_clock::now();
  while (true) {
    auto now = std::chrono::steady_clock::now();
    if (now >= next_status) {
      write_status();
      next_status = now + kStatusInterval;
    }
    // Each daemon's epoll descriptor stands for all its sockets, so a
    // busy process's high descriptor numbers never meet select()'s limit.
    std::vector<pollfd> fds{{stop_fd_, POLLIN, 0}};
    int64_t wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(next_status - std::chrono::steady_clock::now()).count();
    for (MHD_Daemon* d : daemons_) {
      const MHD_DaemonInfo* info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
      if (info) fds.push_back({info->epoll_fd, POLLIN, 0});
      MHD_UNSIGNED_LONG_LONG t = 0;
      if (MHD_get_timeout(d, &t) == MHD_YES) wait_ms = std::min<int64_t>(wait_ms, static_cast<int64_t>(t));
    }
    wait_ms = std::clamp<int64_t>(wait_ms, 0, 1000);
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(wait_ms));
    if (n < 0 && errno != EINTR) {
      log::error("metrics.poll_failed", "error={}", log::q(std::strerror(errno)));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (n > 0 && (fds[0].revents & POLLIN)) return;
    for (MHD_Daemon* d : daemons_) MHD_run(d);
  }
}

}  // namespace mxguard::engine
