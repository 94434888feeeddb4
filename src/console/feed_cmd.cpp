// `mxguard feed`: the live feed of verdicts from every shard's spool, newest
// last; --follow keeps printing as verdicts arrive.
#include <chrono>
#include <csignal>
#include <limits>
#include <thread>

#include <fmt/format.h>

#include "console.hpp"
#include "mxguard/admin/feed.hpp"
#include "output.hpp"
#include "quarantine_view.hpp"

namespace mxguard::console {

namespace {

struct FeedOptions {
  bool follow = false;
  bool json = false;
  size_t limit = 50;
  std::string domain, action, since, text;
};

volatile std::sig_atomic_t g_stop = 0;

void print_entry(const admin::FeedEntry& e, bool json) {
  if (json) {
    print_json_line(admin::feed_entry_json(e));
    return;
  }
  const std::string& status = e.delivery;
  const auto& j = e.entry;
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

// A refused filter: usage with the option named, as before the admin library held the checks.
int feed_failure(const admin::Failure& f) {
  if (f.category == admin::Category::kUsage && !f.field.empty())
    return usage_error(fmt::format("--{}: {}", f.field, f.message));
  return fail(f);
}

int run_feed(const Context& ctx, const FeedOptions& o) {
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  const admin::Actor a = actor(ctx, **store);
  const admin::FeedFilter filter{o.domain, o.action, o.text, o.since};
  auto page = admin::read_feed(a, filter, {}, o.limit);
  if (!page) return feed_failure(page.failure());
  for (const auto& e : page->entries) print_entry(e, o.json);
  std::fflush(stdout);
  if (!o.follow) return kExitOk;
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  admin::FeedCursor cursor = page->cursor;
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto more = admin::read_feed(a, filter, cursor, std::numeric_limits<size_t>::max());
    if (!more) return feed_failure(more.failure());
    cursor = more->cursor;
    for (const auto& e : more->entries) print_entry(e, o.json);
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
  cmd->add_option("--text", o->text, "Only verdicts whose id, sender, subject, client or a recipient contains this");
  cmd->add_option("--since", o->since, "Only verdicts at or after (2026-05-01, 2026-05-01T12:00:00Z, 2h, 7d, @UNIX)");
  add_json_flag(*cmd, o->json);
  out.push_back({cmd, [o](const Context& ctx) { return run_feed(ctx, *o); }});
}

}  // namespace mxguard::console
