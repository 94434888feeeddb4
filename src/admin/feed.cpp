// The live feed: every shard's feed ring read after a cursor, filtered,
// scoped and given each message's delivery status from its tracking events.
#include "mxguard/admin/feed.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <memory>

#include "mxguard/admin/onboarding.hpp"
#include "mxguard/admin/quarantine_view.hpp"
#include "mxguard/admin/text.hpp"
#include "mxguard/core/strings.hpp"
#include "mxguard/store/spool.hpp"
#include "mxguard/store/tracking.hpp"

namespace mxguard::admin {

namespace {

std::vector<std::string> recipients_of(const nlohmann::ordered_json& j) {
  std::vector<std::string> out;
  if (!j.contains("recipients") || !j["recipients"].is_array()) return out;
  for (const auto& r : j["recipients"])
    if (r.is_string()) out.push_back(r.get<std::string>());
  return out;
}

std::string domain_of(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : to_lower(address.substr(at + 1));
}

// What became of an accepted message after its verdict, from its tracking
// events: "delivered" when every recipient was, "bounced" when one failed
// for good, "deferred" while one waits for a retry, "held" in quarantine,
// "queued" before any attempt, "" for a refused message (it has no path).
std::string delivery_status(const store::Spool& spool, const nlohmann::ordered_json& j) {
  std::string action = j.value("action", std::string());
  if (action == "reject" || action == "greylist") return "";
  std::string id = j.value("id", std::string());
  if (id.empty()) return "";
  std::map<std::string, std::string> last;  // recipient -> its latest outcome
  bool held = false, released = false;
  store::TrackFilter f;
  f.message_id = id;
  auto st = spool.find_events(f, [&](const store::TrackEvent& e) {
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

struct Checked {
  std::string domain;  // lower case, "" for any
  std::string action;
  std::string text;    // lower case
  int64_t since_ms = 0;
};

Outcome<Checked> check_filter(const Actor& a, const QuarantineScope& scope, const FeedFilter& f) {
  Checked c;
  if (!f.action.empty()) {
    if (std::find(std::begin(kFeedActions), std::end(kFeedActions), f.action) == std::end(kFeedActions))
      return usage(fmt::format("'{}' is not a verdict (deliver, quarantine, reject or greylist)", printable(f.action)),
                   "action");
    c.action = f.action;
  }
  if (!f.since.empty()) {
    auto t = parse_time_arg(f.since, now_ms());
    if (!t) return usage(t.error(), "since");
    c.since_ms = *t;
  }
  if (f.text.size() > 200) return usage("at most 200 characters", "text");
  c.text = to_lower(f.text);
  if (!f.domain.empty()) {
    // Another tenant's domain is as unknown as one that does not exist.
    Failure none{Category::kNotFound, fmt::format("no such domain: {}", printable(f.domain)), "domain"};
    auto name = normalize_domain(f.domain);
    if (!name) return none;
    auto d = a.store.domain(*name);
    if (!d) return unavailable(d.error());
    if (!*d || !scope.covers_domain(*name)) return none;
    c.domain = *name;
  }
  return c;
}

bool matches(const Checked& c, const nlohmann::ordered_json& j, const std::vector<std::string>& visible) {
  if (!c.action.empty() && j.value("action", std::string()) != c.action) return false;
  if (c.since_ms && j.value("time_ms", int64_t{0}) < c.since_ms) return false;
  if (!c.domain.empty() &&
      std::none_of(visible.begin(), visible.end(), [&](const std::string& r) { return domain_of(r) == c.domain; }))
    return false;
  if (c.text.empty()) return true;
  auto has = [&](std::string_view key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() && to_lower(it->get<std::string>()).find(c.text) != std::string::npos;
  };
  return has("id") || has("sender") || has("subject") || has("client") ||
         std::any_of(visible.begin(), visible.end(),
                     [&](const std::string& r) { return to_lower(r).find(c.text) != std::string::npos; });
}

}  // namespace

std::string FeedCursor::to_string() const {
  std::string out;
  for (const auto& [shard, seq] : after) out += fmt::format("{}{}:{}", out.empty() ? "" : ",", shard, seq);
  return out;
}

Outcome<FeedCursor> parse_feed_cursor(std::string_view text, std::string field) {
  FeedCursor c;
  Failure bad = usage("expected SHARD:SEQUENCE[,SHARD:SEQUENCE...] as handed out by the feed", field);
  if (text.size() > 4096) return bad;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (comma != std::string_view::npos && text.empty()) return bad;  // a trailing comma
    size_t colon = part.find(':');
    if (colon == std::string_view::npos) return bad;
    unsigned shard = 0;
    uint64_t seq = 0;
    auto a = std::from_chars(part.data(), part.data() + colon, shard);
    auto b = std::from_chars(part.data() + colon + 1, part.data() + part.size(), seq);
    if (a.ec != std::errc() || a.ptr != part.data() + colon || b.ec != std::errc() ||
        b.ptr != part.data() + part.size() || colon == 0 || colon + 1 == part.size() || shard > 1024)
      return bad;
    c.after[shard] = seq;
  }
  return c;
}

Outcome<FeedPage> read_feed(const Actor& a, const FeedFilter& f, const FeedCursor& from, size_t limit) {
  auto scope = QuarantineScope::of(a.store, a.principal);
  if (!scope) return unavailable(scope.error());
  auto checked = check_filter(a, *scope, f);
  if (!checked) return checked.failure();

  FeedPage page;
  page.cursor = from;
  // Shown entries keep their spool open for the delivery status (LMDB: one
  // open of an environment per process, so each shard is opened once here).
  std::map<unsigned, std::unique_ptr<store::Spool>> spools;
  std::vector<FeedEntry> shown;
  for (unsigned shard : store::Spool::existing_shards(a.config.state_dir)) {
    auto spool = store::Spool::open(a.config.state_dir, shard);
    if (!spool) return unavailable(spool.error());
    uint64_t& last = page.cursor.after[shard];
    auto st = (*spool)->feed_since(last, [&](uint64_t seq, std::string_view text) {
      last = seq;
      auto j = nlohmann::ordered_json::parse(text, nullptr, false);
      if (!j.is_object()) return;
      std::vector<std::string> all = recipients_of(j);
      std::vector<std::string> visible = scope->all() ? all : scope->visible(all);
      if (visible.empty() && !scope->all()) return;
      if (!matches(*checked, j, visible)) return;
      FeedEntry e;
      e.time_ms = j.value("time_ms", int64_t{0});
      e.shard = shard;
      e.seq = seq;
      e.entry = std::move(j);
      shown.push_back(std::move(e));
    });
    if (!st) return unavailable(fmt::format("spool {}: {}", shard, st.error()));
    spools[shard] = std::move(*spool);
  }
  std::stable_sort(shown.begin(), shown.end(), [](const FeedEntry& x, const FeedEntry& y) { return x.time_ms < y.time_ms; });
  size_t start = shown.size() > limit ? shown.size() - limit : 0;
  for (size_t i = start; i < shown.size(); ++i) {
    FeedEntry& e = shown[i];
    e.delivery = delivery_status(*spools[e.shard], e.entry);
    if (!scope->all()) e.entry["recipients"] = scope->visible(recipients_of(e.entry));
    page.entries.push_back(std::move(e));
  }
  return page;
}

nlohmann::ordered_json feed_entry_json(const FeedEntry& e) {
  nlohmann::ordered_json j = e.entry;
  j["delivery"] = e.delivery;
  return j;
}

}  // namespace mxguard::admin
