// `mxguard scan` and `mxguard learn`: the engine's scanner run offline over
// message files, with the state dir's active bundle and Bayes model.
#include <sodium.h>

#include <fmt/format.h>

#include "console.hpp"
#include "mxguard/admin/quarantine.hpp"
#include "message_files.hpp"
#include "mxguard/bayes/bayes.hpp"
#include "mxguard/scan/active.hpp"
#include "mxguard/scan/scanner.hpp"
#include "mxguard/scan/verdict.hpp"
#include "output.hpp"

namespace mxguard::console {

namespace {

struct ScanCmdOptions {
  std::vector<std::string> files;
  std::string domain;
  bool json = false;
};

mime::Limits limits_for(const Config& cfg) {
  mime::Limits l;
  l.max_depth = cfg.scan.mime_max_depth;
  l.max_parts = cfg.scan.mime_max_parts;
  return l;
}

// Reads and scans each file in turn; an unreadable file is reported and
// skipped. Returns kExitRuntime when any file could not be read.
template <typename Fn>
int scan_files(const Context& ctx, const std::vector<std::string>& paths, scan::Scanner& scanner,
               const scan::ScanOptions& options, Fn&& fn) {
  int rc = kExitOk;
  for (const auto& path : paths) {
    auto data = read_message_file(path, ctx.config.smtp.max_message_size);
    if (!data) {
      fail(kExitRuntime, data.error());
      rc = kExitRuntime;
      continue;
    }
    scan::MessageScan ms(scanner, options);
    ms.feed(*data);
    ms.finish();
    if (!fn(path, *data, ms)) return kExitRuntime;
  }
  return rc;
}

int run_scan(const Context& ctx, const ScanCmdOptions& o) {
  scan::Thresholds thresholds;
  std::unique_ptr<store::ConfigStore> store;
  if (!o.domain.empty()) {
    auto md = open_managed_domain(ctx, o.domain);
    if (md.exit_code != kExitOk) return md.exit_code;
    thresholds = {md.domain.reject_threshold, md.domain.quarantine_threshold, md.domain.greylist_threshold};
    store = std::move(md.store);
  } else {
    auto opened = open_config_store(ctx);
    if (!opened) return runtime_error(opened.error());
    store = std::move(*opened);
  }
  auto paths = expand_message_paths(o.files);
  if (!paths) return usage_error(paths.error());
  auto active = scan::load_active(*store, scan::rules_dir_for(ctx.config.scan));
  if (!active) return runtime_error(active.error());
  auto model = bayes::Model::open(ctx.config.state_dir);
  if (!model) return runtime_error(model.error());

  // The engine's rules: the active bundle with the local layer on top.
  auto layered = scan::with_local_layer(active->rules, ctx.config.rules.local_dir);
  if (!layered) return runtime_error(layered.error());
  scan::Scanner scanner(*layered);
  scan::ScanOptions options;
  options.dkim = false;  // offline: no resolver to fetch keys, so no DKIM, SPF, DMARC or DNSBL
  options.limits = limits_for(ctx.config);
  return scan_files(ctx, *paths, scanner, options, [&](const std::string& path, const std::string&,
                                                       const scan::MessageScan& ms) {
    scan::ScanResult r = ms.result({}, model->get());
    scan::Action action = scan::action_for(r.score, thresholds);
    if (o.json) {
      nlohmann::ordered_json reasons = nlohmann::ordered_json::array();
      for (const auto& reason : r.reasons) {
        nlohmann::ordered_json j = {{"rule", reason.rule}, {"score", reason.score}};
        if (!reason.detail.empty()) j["detail"] = reason.detail;
        reasons.push_back(std::move(j));
      }
      print_json_line({{"file", path}, {"score", r.score}, {"action", scan::to_string(action)}, {"reasons", reasons}});
    } else {
      std::string why;
      for (const auto& reason : r.reasons) why += fmt::format(" {}({:+g})", reason.rule, reason.score);
      fmt::print("{}: {:.2f} {}{}\n", printable(path), r.score, scan::to_string(action), why);
    }
    return true;
  });
}

struct LearnOptions {
  std::string kind;
  std::vector<std::string> files;
  bool json = false;
};

int run_learn(const Context& ctx, const LearnOptions& o) {
  if (!is_operator(ctx.principal)) return fail(kExitNotPermitted, not_permitted("training the shared model is for operators"));
  if (o.kind != "ham" && o.kind != "spam") return usage_error(fmt::format("'{}': learn ham or learn spam", o.kind));
  if (sodium_init() < 0) return runtime_error("libsodium did not initialise");
  bool spam = o.kind == "spam";
  auto paths = expand_message_paths(o.files);
  if (!paths) return usage_error(paths.error());
  auto store = open_config_store(ctx);
  if (!store) return runtime_error(store.error());
  auto active = scan::load_active(**store, scan::rules_dir_for(ctx.config.scan));
  if (!active) return runtime_error(active.error());
  auto model = bayes::Model::open(ctx.config.state_dir);
  if (!model) return runtime_error(model.error());

  scan::Scanner scanner(active->rules);
  scan::ScanOptions options;
  options.rules = false;
  options.dkim = false;
  options.limits = limits_for(ctx.config);
  std::vector<bayes::Model::Item> batch;
  size_t learned = 0;
  bool store_failed = false;
  auto flush = [&]() -> bool {
    if (batch.empty()) return true;
    if (auto st = (*model)->learn_batch(batch); !st) {
      runtime_error(st.error());
      store_failed = true;
      return false;
    }
    learned += batch.size();
    batch.clear();
    return true;
  };
  int rc = scan_files(ctx, *paths, scanner, options, [&](const std::string&, const std::string& data,
                                                          const scan::MessageScan& ms) {
    batch.push_back({admin::learn_key(data), ms.tokens().hashes(), spam});
    return batch.size() < 500 || flush();
  });
  if (store_failed) return kExitRuntime;
  if (!flush()) return kExitRuntime;
  auto counts = (*model)->counts();
  if (!counts) return runtime_error(counts.error());
  if (o.json)
    print_json_line({{"learned", learned}, {"as", o.kind}, {"spam_messages", counts->spam_messages},
                     {"ham_messages", counts->ham_messages}, {"tokens", counts->tokens}});
  else
    fmt::print("Learned {} as {}; the model now holds {} spam and {} ham messages, {} tokens.\n",
               count_of(learned, "message", "messages"), o.kind, counts->spam_messages, counts->ham_messages,
               counts->tokens);
  return rc;
}

}  // namespace

void add_scan_commands(CLI::App& root, Commands& out) {
  {
    auto o = std::make_shared<ScanCmdOptions>();
    CLI::App* cmd = root.add_subcommand("scan", "Scan message files with the active rules and Bayes model");
    cmd->add_option("FILE", o->files, "Message files or directories of them")->required();
    cmd->add_option("--domain", o->domain, "Use this domain's thresholds for the action");
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_scan(ctx, *o); }});
  }
  {
    auto o = std::make_shared<LearnOptions>();
    CLI::App* cmd = root.add_subcommand("learn", "Train the Bayes model with messages known to be ham or spam");
    cmd->add_option("KIND", o->kind, "ham or spam")->required();
    cmd->add_option("FILE", o->files, "Message files or directories of them")->required();
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_learn(ctx, *o); }});
  }
}

}  // namespace mxguard::console
