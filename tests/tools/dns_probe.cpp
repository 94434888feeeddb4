// dns-probe: one lookup through the AsyncResolver (poll() loop, as a shard
// runs it) or the blocking Resolver, printed as one JSON line with the status,
// the DNSSEC verdict and the records. Driven by tests/integration/test_dnssec.py.
#include <poll.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "mxguard/dns/async_resolver.hpp"
#include "mxguard/dns/resolver.hpp"

using namespace mxguard;
using nlohmann::json;

namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string hex(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0x0f];
  }
  return out;
}

json record_json(const dns::TlsaRecord& r) {
  return {{"usage", r.usage}, {"selector", r.selector}, {"matching_type", r.matching_type}, {"data", hex(r.data)}};
}
json record_json(const dns::MxRecord& r) { return {{"preference", r.preference}, {"host", r.host}}; }
json record_json(const dns::TxtRecord& r) { return r.text; }
json record_json(const IpAddress& r) { return r.to_string(); }

template <typename R>
json answer_json(const dns::Answer<R>& a) {
  json records = json::array();
  for (const auto& r : a.records) records.push_back(record_json(r));
  return {{"status", dns::to_string(a.status)}, {"secure", a.secure}, {"error", a.error},
          {"canonical_name", a.canonical_name}, {"records", records}};
}

// The blocking Resolver, as the console uses it.
std::optional<json> ask_blocking(dns::Resolver& r, const std::string& type, const std::string& name) {
  if (type == "tlsa") return answer_json(r.tlsa(name));
  if (type == "mx") return answer_json(r.mx(name));
  if (type == "txt") return answer_json(r.txt(name));
  if (type == "addresses") return answer_json(r.addresses(name));
  return std::nullopt;
}

// Starts the lookup on the AsyncResolver; `out` is set from its callback.
bool ask_async(dns::AsyncResolver& r, const std::string& type, const std::string& name, std::optional<json>& out) {
  auto store = [&out](auto a) { out = answer_json(a); };
  if (type == "tlsa") r.tlsa(name, store);
  else if (type == "mx") r.mx(name, store);
  else if (type == "txt") r.txt(name, store);
  else if (type == "addresses") r.addresses(name, store);
  else return false;
  return true;
}

// The engine's loop in miniature: wait on fd(), process(), expire() on a tick.
bool run_until(dns::AsyncResolver& r, const std::optional<json>& out) {
  auto hard_deadline = wall_ms() + 60'000;
  while (!out) {
    pollfd p{r.fd(), POLLIN, 0};
    if (poll(&p, 1, 50) > 0) r.process();
    r.expire(wall_ms());
    if (wall_ms() > hard_deadline) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Ask one DNS question through MxGuard's resolver and print the answer as JSON"};
  dns::ResolverOptions options;
  std::string server, type, name;
  int timeout_ms = 3000;
  bool blocking = false;
  app.add_option("--server", server, "DNS server ip:port")->required();
  app.add_option("--timeout", timeout_ms, "lookup timeout in ms");
  app.add_option("--trust-anchor", options.trust_anchor_file, "DNSSEC trust anchor file (validation on)");
  app.add_flag("--blocking", blocking, "use the console's blocking Resolver");
  app.add_option("type", type, "tlsa, mx, txt or addresses")
      ->required()
      ->check(CLI::IsMember({"tlsa", "mx", "txt", "addresses"}));
  app.add_option("name", name, "the name to ask about")->required();
  CLI11_PARSE(app, argc, argv);
  options.servers = {server};
  options.timeout = Millis(timeout_ms);

  std::optional<json> out;
  auto started = wall_ms();
  if (blocking) {
    auto resolver = dns::Resolver::create(options);
    if (!resolver) {
      std::fprintf(stderr, "dns-probe: %s\n", resolver.error().c_str());
      return 2;
    }
    out = ask_blocking(*resolver, type, name);
    if (!out) return 2;
  } else {
    auto resolver = dns::AsyncResolver::create(options);
    if (!resolver) {
      std::fprintf(stderr, "dns-probe: %s\n", resolver.error().c_str());
      return 2;
    }
    if (!ask_async(**resolver, type, name, out)) return 2;
    if (!run_until(**resolver, out)) {
      std::fprintf(stderr, "dns-probe: the lookup did not finish within 60 s\n");
      return 3;
    }
  }
  (*out)["elapsed_ms"] = wall_ms() - started;
  std::printf("%s\n", out->dump().c_str());
  return 0;
}
