// The libunbound context: forwarders, options, and what we deliberately leave
// out (resolv.conf, /etc/hosts, recursion from the root).
#include "context.hpp"

#include <fmt/format.h>
#include <unbound.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace mxguard::dns {

namespace {

using Option = std::pair<std::string, std::string>;

// Sends bounded by `timeout`: unbound retries a silent server with a backoff
// capped at infra-cache-max-rtt, so capping it at our own deadline (but not
// below a second, or slow links would never get an answer) makes our deadline,
// not unbound's give-up, decide when a dead server is reported. A silent
// server thus shows as kTimeout rather than a late SERVFAIL.
std::string max_rtt_ms(Millis timeout) {
  auto ms = std::clamp<int64_t>(timeout.count(), 1000, 120'000);
  return std::to_string(ms);
}

std::vector<Option> unbound_options(const ResolverOptions& o) {
  std::vector<Option> opts = {
      // The normal appliance setup is a caching resolver on loopback.
      {"do-not-query-localhost:", "no"},
      // We are a stub in front of the operator's servers: names they serve
      // (lab zones under .test, home.arpa, private reverse zones) must resolve
      // as they say, not be answered by unbound's built-in RFC 6761 zones.
      {"local-zone:", "test. transparent"},
      {"local-zone:", "home.arpa. transparent"},
      // Loopback reverse names too: lab and test clients connect from
      // 127.0.0.x, and their PTR records are the test server's to give.
      {"local-zone:", "127.in-addr.arpa. transparent"},
      {"unblock-lan-zones:", "yes"},
      {"outbound-msg-retry:", "3"},
      {"infra-cache-max-rtt:", max_rtt_ms(o.timeout)},
      {"verbosity:", "0"},
  };
  // Without a trust anchor the validator could only say "insecure" anyway;
  // leaving it out saves its DNSKEY/DS lookups on every answer.
  if (o.trust_anchor_file.empty()) {
    opts.push_back({"module-config:", "iterator"});
  } else {
    // Unbound's default, spelled out because DANE rests on it: an answer
    // that fails validation is an error, never handed on as merely insecure.
    opts.push_back({"val-permissive-mode:", "no"});
  }
  return opts;
}

Status set_forwarders(ub_ctx* ctx, const std::vector<std::string>& servers) {
  if (servers.empty()) return Error{"no DNS servers configured (dns.servers)"};
  for (const auto& s : servers) {
    auto addr = unbound_address(s);
    if (!addr) return Error{addr.error()};
    if (int e = ub_ctx_set_fwd(ctx, addr->c_str()); e != 0)
      return Error{fmt::format("DNS server '{}': {}", s, ub_strerror(e))};
  }
  return {};
}

Status set_options(ub_ctx* ctx, const ResolverOptions& o) {
  for (const auto& [name, value] : unbound_options(o)) {
    if (int e = ub_ctx_set_option(ctx, name.c_str(), value.c_str()); e != 0)
      return Error{fmt::format("libunbound option {} {}: {}", name, value, ub_strerror(e))};
  }
  if (!o.trust_anchor_file.empty()) {
    if (int e = ub_ctx_add_ta_file(ctx, o.trust_anchor_file.c_str()); e != 0)
      return Error{fmt::format("DNSSEC trust anchor {}: {}", o.trust_anchor_file, ub_strerror(e))};
  }
  return {};
}

// libunbound loads the trust anchor when it finalizes the context, by default
// at the first query: a missing or malformed file would then fail every lookup
// sharing the context (SPF, DNSBL, delivery), one by one, instead of start-up.
// Adding a local zone finalizes it; this one repeats what the options set.
Status finalize(ub_ctx* ctx, const ResolverOptions& o) {
  int e = ub_ctx_zone_add(ctx, "test.", "transparent");
  if (e == 0) return {};
  if (o.trust_anchor_file.empty()) return Error{fmt::format("libunbound set-up: {}", ub_strerror(e))};
  return Error{fmt::format("DNSSEC trust anchor {}: cannot be loaded ({})", o.trust_anchor_file, ub_strerror(e))};
}

}  // namespace

Result<std::string> unbound_address(std::string_view server) {
  std::string host;
  uint16_t port = 53;
  if (!parse_host_port(server, 53, host, port))
    return Error{fmt::format("DNS server '{}' is not an IP[:port] address", server)};
  return fmt::format("{}@{}", host, port);
}

Result<Resolver::Context> make_context(const ResolverOptions& o) {
  if (o.timeout.count() <= 0) return Error{"the DNS timeout must be positive"};
  Resolver::Context ctx(ub_ctx_create());
  if (!ctx) return Error{"cannot create a libunbound context"};
  if (auto s = set_forwarders(ctx.get(), o.servers); !s) return Error{s.error()};
  if (auto s = set_options(ctx.get(), o); !s) return Error{s.error()};
  // A thread rather than the default forked process: cheaper, and nothing
  // outlives the console when it exits.
  if (int e = ub_ctx_async(ctx.get(), 1); e != 0)
    return Error{fmt::format("libunbound async mode: {}", ub_strerror(e))};
  if (auto s = finalize(ctx.get(), o); !s) return Error{s.error()};
  return ctx;
}

}  // namespace mxguard::dns
