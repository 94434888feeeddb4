// `mxguard feed`: the live feed of verdicts from every shard's spool, newest
// last; --follow keeps printing as verdicts arrive.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <map>
#include <thread>

#include <fmt/format.h>

#include "console.hpp"
#include "mxguard/store/spool.hpp"
#include "output.hpp"

namespace mxguard::console {

namespace {

struct FeedOptions {
  bool follow = false;
  bool json = false;
  size_t limit = 50;
};

struct Entry {
  int64_t time_ms = 0;
  unsigned shard = 0;
  uint64_t seq = 0;
  nlohmann::ordered_json j;
};

volatile std::sig_atomic_t g_stop = 0;

// Who may see an entry: operators everything, others the entries for a
// recipient in a domain they manage.
class Visibility {
 public:
  Visibility(const store::ConfigStore& store, const Principal& p) : store_(store), p_(p) {}
  bool visible(const nlohmann::ordered_json& j) {
    if (is_operator(p_)) return true;
    if (!j.contains("recipients") || !j["recipients"].is_array()) return false;
    for (const auto& r : j["recipients"]) {
      std::string rcpt = r.is_string() ? r.get<std::string>() : "";
      size_t at = rcpt.rfind('@');
      if (at == std::string::npos) continue;
      std::string dom = rcpt.substr(at + 1);
      auto it = cache_.find(dom);
      if (it == cache_.end()) {
        auto d = store_.domain(dom);
        bool ok = d && *d && may_manage_domain(p_, **d);
        it = cache_.emplace(dom, ok).first;
      }
      if (it->second) return true;
    }
    return false;
  }

 private:
  const store::ConfigStore& store_;
  const Principal& p_;
  std::map<std::string, bool> cache_;
};

void print_entry(const Entry& e, bool json) {
  if (json) {
    print_json_line(e.j);
    return;
  }
  const auto& j = e.j;
  std::string reasons;
  size_t n = 0;
  if (j.contains("reasons"))
    for (const auto& r : j["reasons"]) {
      if (n++ == 3) {
        reasons += " ...";
        break;
      }
      reasons += fmt::format("{}{}", reasons.empty() ? "" : " ", r.value("rule", std::string()));
    }
  std::string rcpts;
  if (j.contains("recipients") && j["recipients"].is_array() && !j["recipients"].empty()) {
    rcpts = j["recipients"][0].get<std::string>();
    if (j["recipients"].size() > 1) rcpts += fmt::format(" (+{})", j["recipients"].size() - 1);
  }
  std::string sender = j.value("sender", std::string());
  fmt::print("{} {:<10} {:>6.2f} {:<15} {} -> {} \"{}\" {}\n", iso8601(e.time_ms), j.value("action", std::string()),
             j.value("score", 0.0), printable(j.value("client", std::string())),
             printable(truncate(sender.empty() ? "<>" : sender, 40)), printable(truncate(rcpts, 40)),
             printable(truncate(j.value("subject", std::string()), 50)), reasons);
}

// Reads every entry after `after[shard]` from every spool, oldest first.
Result<std::vector<Entry>> collect(const std::string& state_dir, std::map<unsigned, uint64_t>& after) {
  std::vector<Entry> out;
  for (unsigned shard : store::Spool::existing_shards(state_dir)) {
    auto spool = store::Spool::open(state_dir, shard);
    if (!spool) return Error{spool.error()};
    uint64_t& last = after[shard];
    auto st = (*spool)->feed_since(last, [&](uint64_t seq, std::string_view text) {
      last = seq;
      auto j = nlohmann::ordered_json::parse(text, nullptr, false);
      if (!j.is_object()) return;
      Entry e;
      e.time_ms = j.value("time_ms", int64_t{0});
      e.shard = shard;
      e.seq = seq;
      e.j = std::move(j);
      out.push_back(std::move(e));
    });
    if (!st) return Error{st.error()};
  }
  std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.time_ms < b.time_ms; });
  return out;
}

int run_feed(const Context& ctx, const FeedOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  Visibility vis(**store, ctx.principal);
  std::map<unsigned, uint64_t> after;
  auto first = collect(ctx.config.state_dir, after);
  if (!first) return runtime_error(first.error());
  std::vector<Entry> shown;
  for (auto& e : *first)
    if (vis.visible(e.j)) shown.push_back(std::move(e));
  size_t start = shown.size() > o.limit ? shown.size() - o.limit : 0;
  for (size_t i = start; i < shown.size(); ++i) print_entry(shown[i], o.json);
  std::fflush(stdout);
  if (!o.follow) return kExitOk;
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto more = collect(ctx.config.state_dir, after);
    if (!more) return runtime_error(more.error());
    for (const auto& e : *more)
      if (vis.visible(e.j)) print_entry(e, o.json);
    std::fflush(stdout);
  }
  return kExitOk;
}

}  // namespace

void add_feed_commands(CLI::App& root, Commands& out) {
  auto o = std::make_shared<FeedOptions>();
  CLI::App* cmd = root.add_subcommand("feed", "Show the live feed of verdicts (newest last)");
  cmd->add_flag("-f,--follow", o->follow, "Keep printing new verdicts until interrupted");
  cmd->add_option("-n,--limit", o->limit, "How many recent verdicts to show first (default 50)")
      ->check(CLI::Range(size_t{0}, size_t{100000}));
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_feed(ctx, *o); }});
}

}  // namespace mxguard::console
