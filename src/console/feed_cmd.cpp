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
#include "mxguard/core/strings.hpp"
#include "mxguard/store/tracking.hpp"
#include "output.hpp"
#include "quarantine_view.hpp"

namespace mxguard::console {

namespace {

struct FeedOptions {
  bool follow = false;
  bool json = false;
  size_t limit = 50;
  std::string domain, action, since;
};

// Which entries a --domain, --action and --since ask for.
struct FeedFilter {
  std::string domain;  // lower case; an entry matches when a recipient is in it
  std::string action;
  int64_t since_ms = 0;
  bool matches(const nlohmann::ordered_json& j) const {
    if (!action.empty() && j.value("action", std::string()) != action) return false;
    if (since_ms && j.value("time_ms", int64_t{0}) < since_ms) return false;
    if (domain.empty()) return true;
    if (!j.contains("recipients") || !j["recipients"].is_array()) return false;
    for (const auto& r : j["recipients"]) {
      std::string rcpt = r.is_string() ? to_lower(r.get<std::string>()) : "";
      size_t at = rcpt.rfind('@');
      if (at != std::string::npos && rcpt.substr(at + 1) == domain) return true;
    }
    return false;
  }
};

// What became of an accepted message after its verdict, from its tracking
// events: "delivered" when every recipient was, "bounced" when one failed
// for good, "deferred" while one waits for a retry, "held" in quarantine,
// "queued" before any attempt, "" for a refused message (it has no path).
std::string delivery_status(const std::string& state_dir, unsigned shard, const nlohmann::ordered_json& j,
                            std::map<unsigned, std::unique_ptr<store::Spool>>& spools) {
  std::string action = j.value("action", std::string());
  if (action == "reject" || action == "greylist") return "";
  std::string id = j.value("id", std::string());
  if (id.empty()) return "";
  auto& spool = spools[shard];
  if (!spool) {
    auto s = store::Spool::open(state_dir, shard);
    if (!s) return "unknown";
    spool = std::move(*s);
  }
  std::map<std::string, std::string> last;  // recipient -> its latest outcome
  bool held = false, released = false;
  store::TrackFilter f;
  f.message_id = id;
  auto st = spool->find_events(f, [&](const store::TrackEvent& e) {
    if (e.decision == "quarantined") held = true;
    if (e.decision == "released") released = true;
    if (e.decision == "delivered" || e.decision == "deferred" || e.decision == "bounced" || e.decision == "returned")
      for (const auto& r : e.recipients) last[r] = e.decision;
  });
  if (!st) return "unknown";
  size_t delivered = 0;
  bool failed = false, deferred = false;
  for (const auto& [r, d] : last) {
    if (d == "delivered") ++delivered;
    else if (d == "deferred") deferred = true;
    else failed = true;
  }
  if (failed) return "bounced";
  if (deferred) return "deferred";
  if (released) return "released";
  if (held && last.empty()) return "held";
  size_t want = j.contains("recipients") && j["recipients"].is_array() ? j["recipients"].size() : 0;
  if (held) want = delivered;  // the held recipients wait in the quarantine
  if (!last.empty() && delivered >= want) return held ? "delivered+held" : "delivered";
  return "queued";
}

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

void print_entry(const Entry& e, bool json, const std::string& status) {
  if (json) {
    nlohmann::ordered_json j = e.j;
    j["delivery"] = status;
    print_json_line(j);
    return;
  }
  const auto& j = e.j;
  std::string reasons;
  if (j.contains("reasons"))
    for (const auto& r : j["reasons"])
      reasons += fmt::format("{}{}={:g}", reasons.empty() ? "" : " ", r.value("rule", std::string()),
                             r.value("score", 0.0));
  std::string rcpts;
  if (j.contains("recipients") && j["recipients"].is_array() && !j["recipients"].empty()) {
    rcpts = j["recipients"][0].get<std::string>();
    if (j["recipients"].size() > 1) rcpts += fmt::format(" (+{})", j["recipients"].size() - 1);
  }
  std::string sender = j.value("sender", std::string());
  fmt::print("{} {} {:<10} {:>6.2f} {:<15} {} -> {} \"{}\" {}{}\n", iso8601(e.time_ms), j.value("id", std::string()),
             j.value("action", std::string()) + (status.empty() ? "" : "/" + status), j.value("score", 0.0),
             printable(j.value("client", std::string())), printable(truncate(sender.empty() ? "<>" : sender, 40)),
             printable(truncate(rcpts, 40)), printable(truncate(j.value("subject", std::string()), 50)),
             reasons.empty() ? "" : "reasons: ", reasons);
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
  FeedFilter filter;
  filter.domain = to_lower(o.domain);
  filter.action = o.action;
  if (!o.since.empty()) {
    auto t = parse_time_arg(o.since, now_ms());
    if (!t) return usage_error(fmt::format("--since: {}", t.error()));
    filter.since_ms = *t;
  }
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  if (!filter.domain.empty()) {
    // Another tenant's domain is as unknown as one that does not exist.
    auto d = (*store)->domain(filter.domain);
    if (!d) return runtime_error(d.error());
    auto scope = QuarantineScope::of(**store, ctx.principal);
    if (!scope) return runtime_error(scope.error());
    if (!*d || !scope->covers_domain(filter.domain)) return usage_error(fmt::format("no such domain: {}", o.domain));
  }
  Visibility vis(**store, ctx.principal);
  std::map<unsigned, std::unique_ptr<store::Spool>> spools;
  auto status = [&](const Entry& e) { return delivery_status(ctx.config.state_dir, e.shard, e.j, spools); };
  std::map<unsigned, uint64_t> after;
  auto first = collect(ctx.config.state_dir, after);
  if (!first) return runtime_error(first.error());
  std::vector<Entry> shown;
  for (auto& e : *first)
    if (filter.matches(e.j) && vis.visible(e.j)) shown.push_back(std::move(e));
  size_t start = shown.size() > o.limit ? shown.size() - o.limit : 0;
  for (size_t i = start; i < shown.size(); ++i) print_entry(shown[i], o.json, status(shown[i]));
  std::fflush(stdout);
  if (!o.follow) return kExitOk;
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto more = collect(ctx.config.state_dir, after);
    if (!more) return runtime_error(more.error());
    for (const auto& e : *more)
      if (filter.matches(e.j) && vis.visible(e.j)) print_entry(e, o.json, status(e));
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
  cmd->add_option("--domain", o->domain, "Only verdicts with a recipient in this domain");
  cmd->add_option("--action", o->action, "Only this verdict")
      ->check(CLI::IsMember({"deliver", "quarantine", "reject", "greylist"}));
  cmd->add_option("--since", o->since, "Only verdicts at or after (2026-05-01, 2026-05-01T12:00:00Z, 2h, 7d, @UNIX)");
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_feed(ctx, *o); }});
}

}  // namespace mxguard::console
