// auth-probe: runs one sender check (SPF, DMARC, DNSBL, HELO/rDNS) through
// the AsyncResolver with a poll() loop, as the engine's shard would, and
// prints the outcome as one JSON line. Driven by tests/integration/test_auth.py.
#include <poll.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mxguard/auth/checks.hpp"
#include "mxguard/dns/async_resolver.hpp"

using namespace mxguard;
using nlohmann::json;

namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

IpAddress parse_ip(const std::string& text) {
  auto ip = IpAddress::parse(text);
  if (!ip) throw CLI::ValidationError("--ip", "not an IP address: " + text);
  return *ip;
}

json spf_json(const auth::SpfOutcome& o) {
  return {{"result", auth::to_string(o.result)}, {"domain", o.domain}, {"explanation", o.explanation}};
}

json hits_json(const std::vector<auth::DnsblHit>& hits) {
  json list = json::array();
  for (const auto& h : hits) list.push_back({{"zone", h.zone}, {"listed", h.listed}, {"answer", h.answer}});
  return {{"hits", list}};
}

// "example.test:pass" or "example.test:fail".
auth::DkimSignatureResult parse_dkim(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) throw CLI::ValidationError("--dkim", "expected DOMAIN:pass|fail");
  return {text.substr(0, colon), text.substr(colon + 1) == "pass"};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Run one sender-authentication check against a DNS server"};
  std::string server;
  int timeout_ms = 2000;
  app.add_option("--server", server, "DNS server ip:port")->required();
  app.add_option("--timeout", timeout_ms, "lookup timeout in ms");
  app.require_subcommand(1);

  std::string ip, sender, helo, from, spf_result, spf_domain, sample_key;
  std::vector<std::string> zones, hosts, dkim;
  auto* spf = app.add_subcommand("spf", "SPF check_host()");
  spf->add_option("--ip", ip)->required();
  spf->add_option("--sender", sender);
  spf->add_option("--helo", helo);
  auto* dmarc = app.add_subcommand("dmarc", "DMARC; with --ip the SPF check runs first and feeds it");
  dmarc->add_option("--from", from)->required();
  dmarc->add_option("--ip", ip);
  dmarc->add_option("--sender", sender);
  dmarc->add_option("--helo", helo);
  dmarc->add_option("--spf-result", spf_result);
  dmarc->add_option("--spf-domain", spf_domain);
  dmarc->add_option("--dkim", dkim, "DOMAIN:pass|fail, repeatable");
  dmarc->add_option("--sample-key", sample_key);
  auto* bl_ip = app.add_subcommand("dnsbl-ip", "client address under IP lists");
  bl_ip->add_option("--ip", ip)->required();
  bl_ip->add_option("--zone", zones)->required();
  auto* bl_hosts = app.add_subcommand("dnsbl-hosts", "URL hosts under domain lists");
  bl_hosts->add_option("--host", hosts)->required();
  bl_hosts->add_option("--zone", zones)->required();
  auto* helo_cmd = app.add_subcommand("helo", "HELO/rDNS sanity");
  helo_cmd->add_option("--ip", ip)->required();
  helo_cmd->add_option("--helo", helo)->required();
  CLI11_PARSE(app, argc, argv);

  dns::ResolverOptions options;
  options.servers = {server};
  options.timeout = Millis(timeout_ms);
  auto resolver = dns::AsyncResolver::create(options);
  if (!resolver) {
    std::fprintf(stderr, "auth-probe: %s\n", resolver.error().c_str());
    return 2;
  }
  auto& r = **resolver;
  std::optional<json> out;
  bool started_inside = false;  // set when a check was started from inside the start call (must not happen)

  try {
    if (spf->parsed()) {
      auth::check_spf(r, {parse_ip(ip), sender, helo}, [&](auth::SpfOutcome o) { out = spf_json(o); });
    } else if (dmarc->parsed()) {
      auth::DmarcRequest req;
      req.from_domain = from;
      req.sample_key = sample_key;
      for (const auto& d : dkim) req.dkim.push_back(parse_dkim(d));
      auto run_dmarc = [&r, &out](auth::DmarcRequest q, std::optional<json> spf_out) {
        auth::check_dmarc(r, q, [&out, spf_out](auth::DmarcOutcome o) {
          json j = {{"result", auth::to_string(o.result)}, {"policy", auth::to_string(o.policy)},
                    {"from_domain", o.from_domain}, {"org_domain", o.org_domain}, {"detail", o.detail}};
          if (spf_out) j["spf"] = *spf_out;
          out = j;
        });
      };
      if (!ip.empty()) {
        // SPF first; DMARC starts from inside its callback, i.e. from process().
        auth::check_spf(r, {parse_ip(ip), sender, helo}, [req, run_dmarc](auth::SpfOutcome o) mutable {
          req.spf = o;
          run_dmarc(req, spf_json(o));
        });
      } else {
        req.spf.domain = spf_domain;
        for (auto res : {auth::SpfResult::kNone, auth::SpfResult::kNeutral, auth::SpfResult::kPass,
                         auth::SpfResult::kFail, auth::SpfResult::kSoftFail, auth::SpfResult::kTempError,
                         auth::SpfResult::kPermError})
          if (auth::to_string(res) == spf_result) req.spf.result = res;
        run_dmarc(req, std::nullopt);
      }
    } else if (bl_ip->parsed()) {
      auth::check_dnsbl_ip(r, parse_ip(ip), zones, [&](std::vector<auth::DnsblHit> h) { out = hits_json(h); });
    } else if (bl_hosts->parsed()) {
      auth::check_dnsbl_hosts(r, hosts, zones, [&](std::vector<auth::DnsblHit> h) { out = hits_json(h); });
    } else if (helo_cmd->parsed()) {
      auth::check_helo(r, parse_ip(ip), helo, [&](auth::HeloOutcome o) {
        out = json{{"helo_is_ip_literal", o.helo_is_ip_literal}, {"helo_syntax_bad", o.helo_syntax_bad},
                   {"helo_resolves", o.helo_resolves}, {"helo_matches_client", o.helo_matches_client},
                   {"rdns_present", o.rdns_present}, {"rdns_confirmed", o.rdns_confirmed},
                   {"rdns_name", o.rdns_name}, {"temp_error", o.temp_error}};
      });
    }
  } catch (const CLI::Error& e) {
    return app.exit(e);
  }
  started_inside = out.has_value();

  // The engine's loop in miniature: wait on fd(), process(), expire() on a tick.
  auto started = wall_ms();
  auto hard_deadline = started + 60'000;
  while (!out) {
    pollfd p{r.fd(), POLLIN, 0};
    int n = poll(&p, 1, 50);
    if (n > 0) r.process();
    r.expire(wall_ms());
    if (wall_ms() > hard_deadline) {
      std::fprintf(stderr, "auth-probe: the check did not finish within 60 s\n");
      return 3;
    }
  }
  (*out)["elapsed_ms"] = wall_ms() - started;
  (*out)["pending_after"] = r.pending();
  (*out)["called_back_inside_start"] = started_inside;
  std::printf("%s\n", out->dump().c_str());
  return 0;
}
