// `mxguard status [--json]`: is the box well? The engine's lock and status
// file (no systemd needed), the queue read from the spools, the resolver
// probed, the state dir's disk. Exit 1 when something needs attention.
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "console.hpp"
#include "mxguard/dns/probe.hpp"
#include "mxguard/store/config_store.hpp"
#include "mxguard/store/spool.hpp"

namespace mxguard::console {

namespace {

// Thresholds of "needs attention" (README, `mxguard status`).
constexpr int64_t kStatusStaleMs = 10'000;           // the engine rewrites its status file every second
constexpr int64_t kQueueOldMs = 24LL * 3'600'000;    // or half of delivery.max_queue_lifetime if shorter
constexpr double kDiskMinFreePercent = 5.0;
constexpr uint64_t kDiskMinFreeBytes = 512ULL << 20;
constexpr Millis kDnsTimeout{2000};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The process holding the engine's flock on state_dir/mxguardd.pid, 0 when
// none: found in /proc/locks by the file's inode, so asking takes no lock
// (a test lock could make an engine starting at that moment fail).
long engine_pid(const std::string& state_dir) {
  std::string path = state_dir + "/mxguardd.pid";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  long recorded = 0;
  {
    std::string text = read_file(path);
    for (char c : text) {
      if (c < '0' || c > '9') break;
      recorded = recorded * 10 + (c - '0');
    }
  }
  std::ifstream locks("/proc/locks");
  if (!locks) {
    // No /proc/locks: a recorded PID that is alive is the best we can say.
    return recorded > 0 && (::kill(static_cast<pid_t>(recorded), 0) == 0 || errno == EPERM) ? recorded : 0;
  }
  std::string line;
  const std::string ino = std::to_string(st.st_ino);
  while (std::getline(locks, line)) {
    // "1: FLOCK  ADVISORY  WRITE 4242 00:2d:1234 0 EOF" (waiters carry "->" and are skipped)
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    if (f.size() < 6 || f[1] != "FLOCK" || f[3] != "WRITE") continue;
    const std::string& id = f[5];
    size_t colon = id.rfind(':');
    if (colon == std::string::npos || id.substr(colon + 1) != ino) continue;
    long pid = std::strtol(f[4].c_str(), nullptr, 10);
    return pid > 0 ? pid : (recorded > 0 ? recorded : 1);
  }
  return 0;
}

std::string age_text(int64_t ms) {
  int64_t s = ms / 1000;
  if (s < 120) return fmt::format("{}s", s);
  if (s < 7200) return fmt::format("{}m", s / 60);
  if (s < 172800) return fmt::format("{}h", s / 3600);
  return fmt::format("{}d", s / 86400);
}

std::string utc_text(int64_t ms) {
  time_t t = static_cast<time_t>(ms / 1000);
  tm tmv{};
  gmtime_r(&t, &tmv);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tmv);
  return buf;
}

std::string bytes_text(uint64_t b) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  size_t i = 0;
  while (v >= 1024 && i + 1 < std::size(unit)) {
    v /= 1024;
    ++i;
  }
  return i == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, unit[i]);
}

int run_status(const Context& ctx, bool json) {
  const Config& cfg = ctx.config;
  const int64_t now = now_ms();
  std::vector<std::string> attention;
  nlohmann::ordered_json out;
  out["state_dir"] = cfg.state_dir;

  // The engine: its lock, then what its status file says.
  long pid = engine_pid(cfg.state_dir);
  nlohmann::json status;
  if (pid > 0) {
    status = nlohmann::json::parse(read_file(fmt::format("{}/engine-status.json", cfg.state_dir)), nullptr, false);
    if (status.is_discarded() || !status.is_object() || status.value("pid", 0L) != pid) status = nlohmann::json();
  }
  nlohmann::ordered_json engine = {{"running", pid > 0}, {"pid", pid > 0 ? nlohmann::json(pid) : nlohmann::json()}};
  int64_t status_age = -1;
  if (status.is_object()) {
    status_age = std::max<int64_t>(now - status.value("updated_ms", int64_t{0}), 0);
    engine["version"] = status.value("version", "");
    engine["started_ms"] = status.value("started_ms", int64_t{0});
    engine["status_age_ms"] = status_age;
  }
  out["engine"] = engine;
  if (pid <= 0) attention.push_back("engine is not running");
  else if (!status.is_object()) attention.push_back("engine is running but has written no status file (starting?)");
  else if (status_age > kStatusStaleMs)
    attention.push_back(fmt::format("engine status is {} old: its monitor thread is stuck", age_text(status_age)));
  out["shards"] = status.is_object() ? status.value("shards", 0u) : 0u;
  out["sessions"] = status.is_object() ? status.value("sessions", 0u) : 0u;
  if (status.is_object() && status.contains("loop_lag_ms")) out["loop_lag_ms"] = status["loop_lag_ms"];

  // The queue, from the spools (the engine need not run).
  uint64_t queued = 0;
  int64_t oldest = 0;
  bool queue_ok = true;
  for (unsigned shard : store::Spool::existing_shards(cfg.state_dir)) {
    auto spool = store::Spool::open(cfg.state_dir, shard);
    auto st = spool ? (*spool)->queue_stats() : Result<store::Spool::QueueStats>(Error{spool.error()});
    if (!st) {
      attention.push_back(fmt::format("queue of shard {} unreadable: {}", shard, st.error()));
      queue_ok = false;
      continue;
    }
    queued += st->messages;
    if (st->oldest_received_ms > 0 && (oldest == 0 || st->oldest_received_ms < oldest)) oldest = st->oldest_received_ms;
  }
  nlohmann::ordered_json queue = {{"messages", queued}};
  queue["oldest_received_ms"] = oldest > 0 ? nlohmann::json(oldest) : nlohmann::json();
  queue["oldest_age_s"] = oldest > 0 ? nlohmann::json(std::max<int64_t>(now - oldest, 0) / 1000) : nlohmann::json();
  out["queue"] = queue;
  int64_t old_limit = std::min<int64_t>(kQueueOldMs, cfg.delivery.max_queue_lifetime.count() / 2);
  if (oldest > 0 && now - oldest > old_limit)
    attention.push_back(fmt::format("oldest queued message is {} old (received {})", age_text(now - oldest),
                                    utc_text(oldest)));

  // The bundle: what the engine scans with, else what it would load.
  nlohmann::ordered_json bundle;
  if (status.is_object() && status.contains("bundle")) {
    const auto& b = status["bundle"];
    bundle = {{"id", b.value("id", 0u)}, {"name", b.value("name", "")}, {"digest", b.value("digest", "")},
              {"rules", b.value("rules", 0u)}, {"source", "engine"}};
  } else if (access(fmt::format("{}/config", cfg.state_dir).c_str(), F_OK) == 0) {
    if (auto store = open_config_store(ctx)) {
      if (auto list = (*store)->bundles())
        for (const auto& r : *list) {
          if (!r.active) continue;
          auto m = nlohmann::json::parse(r.meta, nullptr, false);
          if (!m.is_object()) continue;
          bundle = {{"id", r.seq}, {"name", m.value("name", "")}, {"digest", m.value("digest", "")},
                    {"rules", m.value("rules", 0u)}, {"source", "stored"}};
        }
    }
  }
  out["bundle"] = bundle.is_null() ? nlohmann::ordered_json() : bundle;

  // The resolver the engine is configured with.
  nlohmann::ordered_json servers = nlohmann::ordered_json::array();
  bool any_dns = false;
  for (const auto& s : cfg.dns.servers) {
    dns::ProbeResult r = dns::probe_server(s, std::min(kDnsTimeout, cfg.dns.timeout));
    any_dns = any_dns || r.reachable;
    nlohmann::ordered_json e = {{"server", s}, {"reachable", r.reachable}};
    if (r.reachable) e["rtt_ms"] = r.rtt_ms;
    else e["error"] = r.error;
    servers.push_back(e);
  }
  out["dns"] = {{"servers", servers}, {"reachable", any_dns}};
  if (!cfg.dns.servers.empty() && !any_dns) attention.push_back("DNS: none of dns.servers answers");

  // Disk of the state dir (or the nearest existing parent).
  std::string dir = cfg.state_dir;
  struct statvfs vfs {};
  while (::statvfs(dir.c_str(), &vfs) != 0 && dir.find('/') != std::string::npos) {
    size_t slash = dir.find_last_of('/');
    dir = slash == 0 ? "/" : dir.substr(0, slash);
    if (dir == "/") {
      ::statvfs(dir.c_str(), &vfs);
      break;
    }
  }
  uint64_t total = uint64_t{vfs.f_blocks} * vfs.f_frsize, free_bytes = uint64_t{vfs.f_bavail} * vfs.f_frsize;
  double free_pct = total ? 100.0 * static_cast<double>(free_bytes) / static_cast<double>(total) : 0;
  out["disk"] = {{"path", dir}, {"free_bytes", free_bytes}, {"total_bytes", total},
                 {"free_percent", static_cast<double>(static_cast<int64_t>(free_pct * 10)) / 10}};
  if (total > 0 && (free_pct < kDiskMinFreePercent || free_bytes < kDiskMinFreeBytes))
    attention.push_back(fmt::format("disk nearly full: {} free ({:.1f}%) in {}", bytes_text(free_bytes), free_pct, dir));

  out["attention"] = attention;
  out["ok"] = attention.empty();

  if (json) {
    fmt::print("{}\n", out.dump());
  } else {
    // The first line is the console menu's summary (and the image test's).
    fmt::print("Engine: {}  shards: {}  queue: {}\n", pid > 0 ? "active" : "down", out["shards"].get<unsigned>(),
               queue_ok ? std::to_string(queued) : std::string("unavailable"));
    if (pid > 0) {
      std::string since = status.is_object() ? fmt::format(" (up since {})", utc_text(status.value("started_ms", int64_t{0}))) : "";
      fmt::print("  pid:       {}{}\n", pid, since);
      fmt::print("  sessions:  {}\n", out["sessions"].get<unsigned>());
    } else {
      fmt::print("  pid:       none (no engine holds {}/mxguardd.pid)\n", cfg.state_dir);
    }
    if (oldest > 0)
      fmt::print("  queue:     {} message{}, oldest received {} ({} ago)\n", queued, queued == 1 ? "" : "s",
                 utc_text(oldest), age_text(now - oldest));
    else
      fmt::print("  queue:     empty\n");
    if (!bundle.is_null())
      fmt::print("  bundle:    #{} {} digest {} ({} rules{})\n", bundle["id"].get<uint64_t>(),
                 bundle["name"].get<std::string>(), bundle["digest"].get<std::string>().substr(0, 16),
                 bundle["rules"].get<uint64_t>(), bundle["source"] == "stored" ? ", stored active; engine not running" : "");
    else
      fmt::print("  bundle:    none\n");
    if (cfg.dns.servers.empty()) fmt::print("  dns:       no dns.servers configured\n");
    for (const auto& e : servers)
      fmt::print("  dns:       {} {}\n", e["server"].get<std::string>(),
                 e["reachable"].get<bool>() ? fmt::format("answers ({} ms)", e["rtt_ms"].get<int64_t>())
                                            : fmt::format("does not answer: {}", e["error"].get<std::string>()));
    fmt::print("  disk:      {} free of {} ({:.1f}%) in {}\n", bytes_text(free_bytes), bytes_text(total), free_pct, dir);
    if (attention.empty()) fmt::print("All well.\n");
    for (const auto& a : attention) fmt::print("ATTENTION: {}\n", a);
  }
  return attention.empty() ? kExitOk : kExitRuntime;
}

}  // namespace

void add_status_commands(CLI::App& root, Commands& out) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = root.add_subcommand(
      "status", "Engine up (PID), shards, sessions, queue, rule bundle, DNS and disk; exit 1 when something needs attention");
  add_json_flag(*cmd, *json);
  // No store needed: status must not create a state dir, and it reads the
  // engine's files even while the config env is busy.
  out.push_back({cmd, [json](const Context& ctx) { return run_status(ctx, *json); }, false});
}

}  // namespace mxguard::console
