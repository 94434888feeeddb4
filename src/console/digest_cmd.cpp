// `mxguard digest send|verify|keys|rotate-key`: the daily quarantine digest
// (run by mxguard-digest.timer), checking a digest link's token, and the
// keys that sign the links.
#include <sodium.h>

#include <algorithm>
#include <array>
#include <memory>
#include <variant>

#include <fmt/format.h>

#include "console.hpp"
#include "mxguard/digest/send.hpp"
#include "mxguard/digest/token.hpp"
#include "mxguard/store/spool.hpp"
#include "output.hpp"

namespace mxguard::console {

namespace {

constexpr int64_t kDayMs = 86'400'000;

struct SendOptions {
  bool dry_run = false;
  bool json = false;
  unsigned settle_s = 60;
};

nlohmann::ordered_json ids_of(const digest::PlannedDigest& d) {
  nlohmann::ordered_json ids = nlohmann::ordered_json::array();
  for (const auto& e : d.entries) ids.push_back(e.id);
  return ids;
}

// The longest retention of any domain: how long a retired key must keep verifying.
Result<int64_t> longest_retention_ms(const store::ConfigStore& store) {
  auto domains = store.domains();
  if (!domains) return Error{domains.error()};
  int64_t days = 30;
  for (const auto& d : *domains) days = std::max<int64_t>(days, d.quarantine_days);
  return days * kDayMs;
}

int run_send(const Context& ctx, const SendOptions& o) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("sending quarantine digests"));
  if (ctx.config.web.public_url.empty())
    return usage_error("web.public_url is not set: digest links need it (set it in [web] of the configuration)");
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  std::vector<unsigned> shards = store::Spool::existing_shards(ctx.config.state_dir);
  std::vector<std::unique_ptr<store::Spool>> spools;
  std::vector<const store::Spool*> readers;
  for (unsigned shard : shards) {
    auto spool = store::Spool::open(ctx.config.state_dir, shard);
    if (!spool) return runtime_error(fmt::format("spool {}: {}", shard, spool.error()));
    readers.push_back(spool->get());
    spools.push_back(std::move(*spool));
  }
  const int64_t now = now_ms();
  // Messages of the last `settle` seconds wait for the next digest, so one
  // still being stored while the quarantine is read is not skipped.
  auto plan = digest::plan_digests(**store, readers, now - int64_t{o.settle_s} * 1000);
  if (!plan) return runtime_error(plan.error());

  if (o.dry_run) {
    for (const auto& d : plan->digests) {
      if (o.json) {
        print_json_line({{"recipient", d.scope.recipient}, {"messages", ids_of(d)}, {"queued_id", nullptr},
                         {"from", d.from}, {"dry_run", true}});
        continue;
      }
      fmt::print("Would send {} to {} from {}:\n", digest::digest_subject(d.scope.recipient, d.entries.size()),
                 printable(d.scope.recipient), printable(d.from));
      for (const auto& e : d.entries)
        fmt::print("  {} {} {} {}\n", e.id, iso8601(e.received_ms), printable(e.sender.empty() ? "<>" : e.sender),
                   printable(truncate(e.subject, 60)));
    }
    if (!o.json && plan->digests.empty()) fmt::print("No recipient has new quarantined mail.\n");
    return kExitOk;
  }

  auto key = digest::signing_key(**store, now);
  if (!key) return runtime_error(key.error());
  size_t sent = 0;
  for (const auto& d : plan->digests) {
    digest::DigestRequest req;
    req.recipient = d.scope.recipient;
    req.from = d.from;
    req.hostname = ctx.config.hostname;
    req.public_url = ctx.config.web.public_url;
    req.now_ms = now;
    req.entries = d.entries;
    std::array<unsigned char, 8> nonce{};
    randombytes_buf(nonce.data(), nonce.size());
    req.unique = fmt::format("{:x}.", now);
    for (unsigned char b : nonce) req.unique += fmt::format("{:02x}", b);
    auto mail = digest::build_digest(*key, req);
    if (!mail) return runtime_error(fmt::format("digest for {}: {}", printable(d.scope.recipient), mail.error()));
    // The digest and the recipient's new period are two stores: the digest is
    // queued first, so a failure in between sends a digest twice rather than never.
    auto queued = digest::queue_digest(*spools.front(), shards.front(), d, *mail, now);
    if (!queued) return runtime_error(fmt::format("digest for {}: {}", printable(d.scope.recipient), queued.error()));
    if (auto s = (*store)->set_last_digest(d.scope.recipient, plan->until_ms); !s) return runtime_error(s.error());
    if (auto s = audit(**store, ctx.principal, "digest.send", d.scope.recipient, nullptr,
                       {{"messages", ids_of(d)}, {"queued_id", *queued}, {"from", d.from}});
        !s)
      return runtime_error(s.error());
    ++sent;
    if (o.json)
      print_json_line({{"recipient", d.scope.recipient}, {"messages", ids_of(d)}, {"queued_id", *queued},
                       {"from", d.from}});
    else
      fmt::print("Queued {} as {}.\n", printable(mail->subject), *queued);
  }
  for (const auto& r : plan->off)
    if (auto s = (*store)->set_last_digest(r, plan->until_ms); !s) return runtime_error(s.error());
  if (!o.json && sent == 0) fmt::print("No recipient has new quarantined mail.\n");
  return kExitOk;
}

// Exit 0 for a token that verifies now, 2 (wrong input) for a refused one.
int run_verify(const Context& ctx, const std::string& token, bool json) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("checking digest links"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto v = digest::verify(**store, token, now_ms());
  if (const auto* refusal = std::get_if<digest::TokenRefusal>(&v)) {
    if (refusal->error == digest::TokenError::kUnavailable) return runtime_error(refusal->message);
    if (json) print_json_line({{"valid", false}, {"error", digest::to_string(refusal->error)}, {"message", refusal->message}});
    return usage_error(fmt::format("digest link refused ({}): {}", digest::to_string(refusal->error), refusal->message));
  }
  const auto& c = std::get<digest::Claims>(v);
  if (json)
    print_json_line({{"valid", true}, {"recipient", c.recipient}, {"message_id", c.message_id},
                     {"action", digest::to_string(c.action)}, {"expires", iso8601(c.expires_ms)}, {"key_id", c.key_id}});
  else
    fmt::print("Valid: {} {} for {} (key {}, expires {}).\n", digest::to_string(c.action), c.message_id,
               printable(c.recipient), c.key_id, iso8601(c.expires_ms));
  return kExitOk;
}

int run_keys(const Context& ctx, bool json) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("digest keys"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto keys = (*store)->digest_keys();
  if (!keys) return runtime_error(keys.error());
  Table t({"KEY", "CREATED", "STATE"});
  for (const auto& k : *keys) {
    std::string state = k.retired_ms == 0 ? "signing" : "retired " + iso8601(k.retired_ms);
    if (json)
      print_json_line({{"key_id", k.id}, {"created", iso8601(k.created_ms)}, {"signing", k.retired_ms == 0},
                       {"retired", k.retired_ms == 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(iso8601(k.retired_ms))}});
    else
      t.add_row({k.id, iso8601(k.created_ms), state});
  }
  if (!json) t.print();
  return kExitOk;
}

int run_rotate(const Context& ctx, bool json) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("rotating digest keys"));
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto keep = longest_retention_ms(**store);
  if (!keep) return runtime_error(keep.error());
  auto before = (*store)->digest_signing_key();
  if (!before) return runtime_error(before.error());
  auto k = digest::rotate_key(**store, now_ms(), *keep);
  if (!k) return runtime_error(k.error());
  nlohmann::ordered_json was = *before ? nlohmann::ordered_json{{"key_id", (*before)->id}} : nlohmann::ordered_json(nullptr);
  if (auto s = audit(**store, ctx.principal, "digest.rotate_key", k->id, was, {{"key_id", k->id}}); !s)
    return runtime_error(s.error());
  if (json) print_json_line({{"key_id", k->id}, {"previous", *before ? nlohmann::ordered_json((*before)->id) : nlohmann::ordered_json(nullptr)}});
  else fmt::print("Digest links are now signed with key {}; older keys verify until their links expire.\n", k->id);
  return kExitOk;
}

}  // namespace

void add_digest_commands(CLI::App& root, Commands& out) {
  CLI::App* group = root.add_subcommand("digest", "Quarantine digests: send them, check a link's token, rotate keys");
  auto s = std::make_shared<SendOptions>();
  CLI::App* send = group->add_subcommand("send", "Queue one digest per recipient with new quarantined mail");
  send->add_flag("--dry-run", s->dry_run, "Print what would be sent; write nothing");
  send->add_option("--settle", s->settle_s, "Leave messages of the last SECONDS for the next digest (default 60)")
      ->check(CLI::Range(0u, 86'400u));
  add_json_flag(*send, s->json);
  out.push_back({send, [s](const Context& ctx) { return run_send(ctx, *s); }});

  auto token = std::make_shared<std::string>();
  auto vjson = std::make_shared<bool>(false);
  CLI::App* verify = group->add_subcommand("verify", "Check a digest link's token (what it does, whether it is valid)");
  verify->add_option("TOKEN", *token, "The token: the last part of the link")->required();
  add_json_flag(*verify, *vjson);
  out.push_back({verify, [token, vjson](const Context& ctx) { return run_verify(ctx, *token, *vjson); }});

  auto kjson = std::make_shared<bool>(false);
  CLI::App* keys = group->add_subcommand("keys", "List the keys that sign digest links");
  add_json_flag(*keys, *kjson);
  out.push_back({keys, [kjson](const Context& ctx) { return run_keys(ctx, *kjson); }});

  auto rjson = std::make_shared<bool>(false);
  CLI::App* rotate = group->add_subcommand("rotate-key", "Sign new digest links with a fresh key");
  add_json_flag(*rotate, *rjson);
  out.push_back({rotate, [rjson](const Context& ctx) { return run_rotate(ctx, *rjson); }});
}

}  // namespace mxguard::console
