// mxguardd: loads the configuration, opens the listeners, starts one shard
// per core, then waits for SIGTERM while feeding systemd's watchdog.
#include <signal.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fmt/format.h>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include <hs/hs.h>
#include <lmdb.h>
#include <openssl/crypto.h>

#include "mxguard/core/config.hpp"
#include "mxguard/core/log.hpp"
#include "mxguard/bayes/bayes.hpp"
#include "mxguard/scan/active.hpp"
#include "mxguard/store/config_store.hpp"
#include "mxguard/store/greylist.hpp"
#include "instance_lock.hpp"
#include "listeners.hpp"
#include "metrics_http.hpp"
#include "rules_watch.hpp"
#include "shard.hpp"

using namespace mxguard;

namespace {

[[noreturn]] void die(const std::string& msg) {
  log::stop_async();
  fmt::print(stderr, "mxguardd: {}\n", msg);
  std::exit(1);
}

void usage() {
  fmt::print(
      "usage: mxguardd [--config FILE] [--check-config] [--verbose] [--version]\n"
      "  --config FILE    TOML configuration (default: $MXGUARD_CONFIG, /etc/mxguard/mxguard.toml,\n"
      "                   else an embedded demo configuration on 127.0.0.1:2525)\n"
      "  --check-config   validate the configuration and exit\n"
      "  --verbose        log connections and other debug events\n");
}

// Loads the certificate and key as configured and logs what is doubtful
// about them; --check-config and the start share it.
Result<engine::SslCtxPtr> load_tls(const Config& cfg) {
  auto ctx = engine::make_server_context(cfg.tls, std::time(nullptr));
  if (!ctx) return Error{ctx.error()};
  for (const auto& w : ctx->warnings) log::warn(w.event, "{}", w.fields);
  return std::move(ctx->ctx);
}

// Every session is a descriptor: aim for smtp.max_connections plus headroom.
// Raising the hard limit works when privileged (or under systemd's LimitNOFILE).
void raise_fd_limit(unsigned max_connections) {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rlim_t want = static_cast<rlim_t>(max_connections) + 4096;
  if (rl.rlim_cur >= want) return;
  rlimit up{want, std::max(want, rl.rlim_max)};
  if (setrlimit(RLIMIT_NOFILE, &up) != 0) {
    rl.rlim_cur = rl.rlim_max;  // unprivileged: take what the hard limit allows
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    log::info("engine.fd_limit", "limit={} wanted={} note=\"sessions live in per-shard io_uring fixed-file "
              "tables of up to this size each\"", rl.rlim_cur, want);
  }
}

// Feeds systemd's watchdog (WatchdogSec= in the unit) from the main thread,
// but only while every shard's loop is turning: a shard stuck in a handler
// stops the pings, and systemd restarts the whole service.
class Watchdog {
 public:
  explicit Watchdog(const std::vector<std::unique_ptr<engine::Shard>>& shards) : shards_(shards) {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
    interval_ = std::chrono::microseconds(usec / 2);
    seen_.resize(shards_.size());
    for (size_t i = 0; i < shards_.size(); ++i) seen_[i] = shards_[i]->heartbeat();
    next_ = std::chrono::steady_clock::now() + interval_;
    log::info("engine.watchdog", "interval_ms={} shards={}",
              std::chrono::duration_cast<std::chrono::milliseconds>(interval_).count(), shards_.size());
  }

  bool enabled() const { return interval_.count() > 0; }

  // How long the main thread may sleep before the next check is due.
  timespec until_due() const {
    auto left = std::max(next_ - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration::zero());
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  }

  // Pings when due and every shard's heartbeat has moved since the last ping.
  void check() {
    auto now = std::chrono::steady_clock::now();
    if (now < next_) return;
    next_ = now + interval_;
    bool all_moved = true;
    for (size_t i = 0; i < shards_.size(); ++i) {
      uint64_t beat = shards_[i]->heartbeat();
      if (beat == seen_[i]) {
        all_moved = false;
        if (!stalled_) log::error("engine.watchdog_withheld", "shard={} heartbeat={}", i, beat);
      }
    }
    if (!all_moved) {
      stalled_ = true;  // stay silent: systemd's timeout does the rest
      return;
    }
    if (stalled_) log::info("engine.watchdog_resumed", "");
    stalled_ = false;
    for (size_t i = 0; i < shards_.size(); ++i) seen_[i] = shards_[i]->heartbeat();
    sd_notify(0, "WATCHDOG=1");
  }

 private:
  const std::vector<std::unique_ptr<engine::Shard>>& shards_;
  std::chrono::steady_clock::duration interval_{0};
  std::chrono::steady_clock::time_point next_{};
  std::vector<uint64_t> seen_;
  bool stalled_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--config" && i + 1 < argc) config_path = argv[++i];
    else if (a == "--check-config") check_only = true;
    else if (a == "--verbose") log::set_level(log::Level::debug);
    else if (a == "--help" || a == "-h") { usage(); return 0; }
    else if (a == "--version") {
      fmt::print("mxguardd {}\nliburing {}\n{}\nHyperscan {}\n{}\n", MXGUARD_VERSION, MXGUARD_LIBURING_VERSION,
                 OpenSSL_version(OPENSSL_VERSION), hs_version(), mdb_version(nullptr, nullptr, nullptr));
      return 0;
    }
    else { fmt::print(stderr, "mxguardd: unknown argument '{}'\n", a); usage(); return 2; }
  }

  Config cfg;
  try {
    cfg = resolve_config(config_path);
  } catch (const ConfigError& e) {
    fmt::print(stderr, "mxguardd: {}\n", e.what());
    return 1;
  }
  if (check_only) {
    // The files are read as a start reads them: a path that names nothing
    // is not "OK".
    if (cfg.tls.enabled()) {
      auto tls = load_tls(cfg);
      if (!tls) {
        fmt::print(stderr, "mxguardd: {}\n", tls.error());
        return 1;
      }
    }
    fmt::print("configuration OK\n");
    return 0;
  }

  // Signals are taken synchronously by the main thread only.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
  log::start_async();
  raise_fd_limit(cfg.smtp.max_connections);

  // Before anything in the state dir is touched: a second engine there would
  // share the port through SO_REUSEPORT and take half the connections.
  auto instance = engine::InstanceLock::acquire(cfg.state_dir);
  if (!instance) die(instance.error());

  auto config_store = store::ConfigStore::open(cfg.state_dir);
  if (!config_store) die(fmt::format("state_dir {}: {}", cfg.state_dir, config_store.error()));

  engine::SslCtxPtr tls;
  if (cfg.tls.enabled()) {
    auto ctx = load_tls(cfg);
    if (!ctx) die(ctx.error());
    tls = std::move(*ctx);
  }

  unsigned nshards = cfg.smtp.shards ? cfg.smtp.shards : static_cast<unsigned>(get_nprocs());
  engine::ConnLimiter limiter({cfg.smtp.max_connections_per_ip, cfg.smtp.max_connection_rate,
                               cfg.smtp.max_message_rate});
  std::atomic<unsigned> connections{0};

  // Listeners first: a port in use is reported before the slower start-up
  // work. The probe leaves a moment between its close and the shards' binds;
  // it is there for the engine started twice, not for a race to the port.
  constexpr std::chrono::milliseconds kPortGrace{3000};
  for (const auto& a : cfg.smtp.listen)
    if (Status st = engine::check_address_free(a, kPortGrace); !st) die(st.error());
  std::vector<std::vector<int>> listeners(nshards);
  for (unsigned i = 0; i < nshards; ++i)
    for (const auto& a : cfg.smtp.listen) {
      auto fd = engine::open_listener(a);
      if (!fd) die(fd.error());
      listeners[i].push_back(*fd);
    }
  auto monitor = engine::Monitor::create(cfg);
  if (!monitor) die(monitor.error());
  const int64_t start_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch()).count();

  // The rules (the factory bundle on a new state dir), the shared Bayes model
  // and greylist, each opened once for the process and shared by the shards.
  auto active = scan::load_active(**config_store, scan::rules_dir_for(cfg.scan));
  if (!active) die(fmt::format("rules: {}", active.error()));
  if (active->replaced_factory)
    log::info("rules.factory_upgraded", "bundle={} replaces={} digest={} rules={}", active->seq,
              active->replaced_factory, active->info.digest.substr(0, 12), active->info.rules);
  // The watcher puts the local layer (rules.local_dir) on top and publishes.
  engine::RulesHolder rules;
  engine::RulesWatcher rules_watcher(**config_store, rules, cfg.rules.local_dir, std::move(*active));
  auto bayes = bayes::Model::open(cfg.state_dir);
  if (!bayes) die(fmt::format("bayes: {}", bayes.error()));
  auto greylist = store::GreylistStore::open(cfg.state_dir);
  if (!greylist) die(fmt::format("greylist: {}", greylist.error()));

  engine::EngineContext ctx{&cfg, config_store->get(), tls.get(), &limiter, &connections,
                            &rules, bayes->get(), greylist->get()};

  std::vector<std::unique_ptr<engine::Shard>> shards;
  for (unsigned i = 0; i < nshards; ++i) shards.push_back(std::make_unique<engine::Shard>(i, ctx, std::move(listeners[i])));

  // Each ring is created on its own thread: single-issuer rings belong to their creator.
  std::vector<std::thread> threads;
  std::vector<std::future<Status>> inits;
  unsigned ncpu = static_cast<unsigned>(get_nprocs());
  for (unsigned i = 0; i < nshards; ++i) {
    auto ready = std::make_shared<std::promise<Status>>();
    inits.push_back(ready->get_future());
    threads.emplace_back([&, i, ready] {
      std::string name = "mxg-shard-" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(i % ncpu, &set);
      if (cfg.smtp.pin_shards) pthread_setaffinity_np(pthread_self(), sizeof set, &set);
      Status st = shards[i]->init();
      bool ok = st.ok();
      ready->set_value(std::move(st));
      if (ok) shards[i]->run();
    });
  }
  std::string failure;
  for (auto& f : inits) {
    Status st = f.get();
    if (!st && failure.empty()) failure = st.error();
  }
  if (!failure.empty()) {
    for (auto& s : shards) s->request_stop();
    for (auto& t : threads) t.join();
    die(failure);
  }

  std::string addrs;
  for (const auto& a : cfg.smtp.listen) addrs += (addrs.empty() ? "" : ",") + a.to_string();
  log::info("engine.ready", "hostname={} shards={} listen={} state_dir={} tls={}", cfg.hostname, nshards, addrs,
            log::q(cfg.state_dir), tls ? "yes" : "no");
  sd_notify(0, "READY=1");
  {
    engine::MonitorSources src{{}, {}, &connections, &rules, start_ms, MXGUARD_VERSION};
    for (const auto& s : shards) {
      src.shards.push_back(&s->metrics());
      src.spools.push_back(s->spool());
    }
    (*monitor)->start(std::move(src));
  }

  // The main thread sleeps in sigtimedwait, waking for signals and, under a
  // systemd watchdog, every half period to decide whether to ping.
  Watchdog watchdog(shards);
  constexpr timespec kNoWatchdogNap{3600, 0};
  while (true) {
    timespec nap = watchdog.enabled() ? watchdog.until_due() : kNoWatchdogNap;
    int sig = sigtimedwait(&sigs, nullptr, &nap);
    if (watchdog.enabled()) watchdog.check();
    if (sig < 0) continue;  // EAGAIN: timeout; EINTR: another signal
    if (sig == SIGHUP) {
      log::info("engine.sighup", "note=\"configuration in LMDB is read live; restart to reload the TOML file\"");
      continue;
    }
    log::info("engine.stopping", "signal={}", sig == SIGTERM ? "TERM" : "INT");
    sd_notify(0, "STOPPING=1");
    break;
  }
  for (auto& s : shards) s->request_stop();
  for (auto& t : threads) t.join();
  monitor->reset();  // before the shards whose counters and spools it reads
  shards.clear();
  log::info("engine.stopped", "");
  log::stop_async();
  return 0;
}
