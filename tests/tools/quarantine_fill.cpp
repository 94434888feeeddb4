// quarantine-fill: writes N held messages into the spools of a state dir
// through the store API, exactly as the engine's storage writer stores a
// quarantined message (Spool::store_batch), for the quarantine benchmark
// (bench/web_quarantine.sh) and its smoke test. Deterministic from --seed.
//
// Recipients are user<k>@<domain> (k < --users), one in five messages has a
// second recipient; senders and subjects come from small word lists, so a
// search for a word matches a known share; every --rare-th message has the
// word "zanzibar" in its subject and comes from "rare.sender@tradewinds.test".
// Received times spread evenly over the --days before --now (ms since the
// epoch). Prints one JSON line describing what it wrote.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/store/envelope.hpp"
#include "mxguard/store/spool.hpp"

using namespace mxguard;

namespace {

const char* const kSenderNames[] = {"billing", "offers", "newsletter", "support", "noreply", "winner", "pharmacy",
                                    "security", "hr", "crypto"};
const char* const kSenderDomains[] = {"deals.test", "promo-mail.test", "cheap-meds.test", "lottery.test",
                                      "bank-alerts.test", "shipping.test"};
const char* const kSubjects[] = {"Your invoice is overdue", "Exclusive offer just for you", "Cheap pills online",
                                 "You have won a prize", "Verify your account now", "Parcel delivery failed",
                                 "Meeting notes", "Crypto opportunity", "Password expires today",
                                 "Weekly newsletter"};

std::string message_text(const store::Envelope& e, unsigned n) {
  std::string s = fmt::format(
      "Received: from [{}] ([{}])\r\n\tby mx.bench.test with ESMTP id {}\r\n"
      "Authentication-Results: mx.bench.test; spf=none\r\n"
      "X-MxGuard-Score: {:.2f} quarantine\r\n"
      "From: <{}>\r\nTo: <{}>\r\nSubject: {}\r\nMessage-ID: {}\r\n"
      "Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
      e.client_ip, e.client_ip, e.id, e.score, e.sender, e.recipients[0], e.subject, e.message_id);
  for (unsigned line = 0; line < 12; ++line)
    s += fmt::format("Line {} of message {}: a limited time offer, click here to claim it today.\r\n", line, n);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Fill the quarantine of a state dir with held messages"};
  std::string state_dir, domain = "bench.test";
  unsigned count = 100000, shards = 2, users = 200, days = 30, rare = 1000, batch = 500;
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  uint32_t seed = 1;
  app.add_option("--state-dir", state_dir, "the engine's state dir")->required();
  app.add_option("--count", count, "messages to store");
  app.add_option("--shards", shards, "spool shards to spread them over (the engine's smtp.shards)");
  app.add_option("--domain", domain, "the recipients' domain");
  app.add_option("--users", users, "distinct recipients");
  app.add_option("--days", days, "received over this many days before --now");
  app.add_option("--now", now, "ms since the epoch");
  app.add_option("--rare", rare, "every N-th message is the rare one");
  app.add_option("--batch", batch, "messages per write transaction");
  app.add_option("--seed", seed, "random seed");
  CLI11_PARSE(app, argc, argv);
  if (shards == 0 || users == 0 || batch == 0 || rare == 0) {
    std::fprintf(stderr, "quarantine-fill: --shards, --users, --batch and --rare must be positive\n");
    return 2;
  }

  std::mt19937 rng(seed);
  std::vector<std::unique_ptr<store::Spool>> spools;
  for (unsigned s = 0; s < shards; ++s) {
    auto sp = store::Spool::open(state_dir, s);
    if (!sp) {
      std::fprintf(stderr, "quarantine-fill: spool %u: %s\n", s, sp.error().c_str());
      return 1;
    }
    spools.push_back(std::move(*sp));
  }
  const int64_t span = int64_t{days} * 86'400'000;
  const int64_t start = now - span;
  std::map<std::string, unsigned> per_recipient;
  unsigned rare_count = 0;
  int64_t first_ms = 0, last_ms = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (unsigned done = 0; done < count;) {
    unsigned n_batch = std::min(batch, count - done);
    std::vector<std::vector<store::Envelope>> envs(shards);
    std::vector<std::vector<std::string>> datas(shards);
    for (unsigned s = 0; s < shards; ++s) {
      envs[s].reserve(n_batch);
      datas[s].reserve(n_batch);
    }
    for (unsigned i = 0; i < n_batch; ++i, ++done) {
      unsigned s = done % shards;
      store::Envelope e;
      int64_t when = start + (count > 1 ? span * done / (count - 1) : 0);
      if (done == 0) first_ms = when;
      last_ms = when;
      // The engine's id form: microseconds in hex, then the shard.
      e.id = fmt::format("{:013x}.s{}", when * 1000 + done % 1000, s);
      bool is_rare = done % rare == rare - 1;
      rare_count += is_rare;
      e.sender = is_rare ? "rare.sender@tradewinds.test"
                         : fmt::format("{}@{}", kSenderNames[rng() % std::size(kSenderNames)],
                                       kSenderDomains[rng() % std::size(kSenderDomains)]);
      e.recipients = {fmt::format("user{}@{}", rng() % users, domain)};
      if (done % 5 == 4) {
        std::string second = fmt::format("user{}@{}", rng() % users, domain);
        if (second != e.recipients[0]) e.recipients.push_back(second);
      }
      e.quarantined = e.recipients;
      for (const auto& r : e.recipients) ++per_recipient[r];
      e.client_ip = fmt::format("198.51.100.{}", rng() % 250 + 1);
      e.client_port = static_cast<uint16_t>(40000 + rng() % 20000);
      e.helo = fmt::format("host{}.spam.test", rng() % 100);
      e.received_ms = when;
      e.subject = is_rare ? fmt::format("Zanzibar holiday {}", done)
                          : fmt::format("{} #{}", kSubjects[rng() % std::size(kSubjects)], done);
      e.message_id = fmt::format("<{}.{}@{}>", done, rng() % 100000, "mailer.test");
      e.scanned = true;
      e.score = 5 + (rng() % 200) / 10.0;
      e.action = "quarantine";
      e.reasons = {"BAYES_SPAM=4.5", "URIBL_TEST=2.5"};
      datas[s].push_back(message_text(e, done));
      e.size = datas[s].back().size();
      envs[s].push_back(std::move(e));
    }
    for (unsigned s = 0; s < shards; ++s) {
      std::vector<store::Spool::Record> records;
      for (size_t k = 0; k < envs[s].size(); ++k) records.push_back({&envs[s][k], datas[s][k]});
      if (records.empty()) continue;
      if (auto st = spools[s]->store_batch(records); !st) {
        std::fprintf(stderr, "quarantine-fill: spool %u: %s\n", s, st.error().c_str());
        return 1;
      }
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string busiest;
  unsigned busiest_n = 0;
  for (const auto& [r, n] : per_recipient)
    if (n > busiest_n) busiest = r, busiest_n = n;
  nlohmann::ordered_json out = {{"count", count},         {"shards", shards},       {"seconds", secs},
                                {"first_ms", first_ms},   {"last_ms", last_ms},     {"rare", rare_count},
                                {"busiest", busiest},     {"busiest_count", busiest_n}, {"users", per_recipient.size()}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
