// DNSBL checks: the client address under IP lists and URL hosts (reduced to
// organisational domains) under domain lists, all asked at once.
#include "mxguard/auth/dnsbl.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "mxguard/auth/checks.hpp"
#include "mxguard/core/strings.hpp"
#include "mxguard/dns/names.hpp"

namespace mxguard::auth {

namespace dnsbl {

std::string normalise_zone(std::string_view zone) {
  std::string z = to_lower(trim(zone));
  while (!z.empty() && z.front() == '.') z.erase(0, 1);
  while (!z.empty() && z.back() == '.') z.pop_back();
  return z;
}

std::string ip_query(const IpAddress& ip, std::string_view zone) {
  return dns::reversed_labels(ip) + "." + std::string(zone);
}

namespace {

// A URL host with a space, a control octet or a backslash is no host a
// domain list can have listed (unlike an SPF name, nothing expands into it).
bool is_plain_host(std::string_view host) {
  return std::all_of(host.begin(), host.end(), [](char c) {
    auto b = static_cast<unsigned char>(c);
    return b > 0x20 && b < 0x7f && c != '\\';
  });
}

}  // namespace

std::vector<std::string> host_keys(const std::vector<std::string>& hosts, size_t cap) {
  std::vector<std::string> out;
  for (const auto& h : hosts) {
    if (out.size() >= cap) break;
    std::string host = to_lower(trim(h));
    while (!host.empty() && host.back() == '.') host.pop_back();
    if (host.empty() || host.front() == '[' || IpAddress::parse(host)) continue;
    if (host.find('.') == std::string::npos || !dns::is_query_name(host) || !is_plain_host(host)) continue;
    std::string org = organisational_domain(host);
    if (std::find(out.begin(), out.end(), org) == out.end()) out.push_back(std::move(org));
  }
  return out;
}

bool is_listing(const IpAddress& answer) {
  if (answer.v6) return false;
  const auto& b = answer.bytes;
  if (b[0] != 127) return false;
  if (b[1] == 255 && b[2] == 255) return false;
  if (b[1] == 0 && b[2] == 1 && b[3] == 255) return false;
  if (b[1] == 0 && b[2] == 0 && b[3] == 1) return false;
  return true;
}

}  // namespace dnsbl

namespace {

// One question: the zone's position and the thing asked about, so hits come
// out in configuration order whatever order the answers arrive in.
struct Question {
  size_t zone_index;
  std::string zone;
  std::string listed;
  std::string name;
};

void ask_all(dns::AsyncResolver& resolver, std::vector<Question> questions,
             std::function<void(std::vector<DnsblHit>)> done) {
  if (questions.empty()) {
    resolver.post([done = std::move(done)] { done({}); });
    return;
  }
  struct Join {
    std::vector<Question> questions;
    std::vector<std::optional<DnsblHit>> hits;
    size_t left = 0;
    std::function<void(std::vector<DnsblHit>)> done;
  };
  auto join = std::make_shared<Join>();
  join->questions = std::move(questions);
  join->hits.resize(join->questions.size());
  join->left = join->questions.size();
  join->done = std::move(done);
  for (size_t i = 0; i < join->questions.size(); ++i) {
    // Failures (timeouts included) are simply not listings: a DNSBL is
    // advisory, and a list that is down must not score anyone.
    resolver.a(dns::presentation_name(join->questions[i].name), [join, i](dns::Answer<IpAddress> a) {
      std::vector<IpAddress> codes;
      for (const auto& r : a.records)
        if (dnsbl::is_listing(r)) codes.push_back(r);
      if (!codes.empty()) {
        // Servers rotate RRsets: sorted codes keep the reason text stable.
        std::sort(codes.begin(), codes.end(), [](const IpAddress& x, const IpAddress& y) { return x.bytes < y.bytes; });
        const auto& q = join->questions[i];
        std::string joined = codes[0].to_string();
        for (size_t k = 1; k < codes.size(); ++k) joined += "," + codes[k].to_string();
        join->hits[i] = DnsblHit{q.zone, q.listed, std::move(joined)};
      }
      if (--join->left > 0) return;
      std::vector<DnsblHit> out;
      for (auto& h : join->hits)
        if (h) out.push_back(std::move(*h));
      join->done(std::move(out));
    });
  }
}

std::vector<std::string> zones_of(const std::vector<std::string>& zones) {
  std::vector<std::string> out;
  for (const auto& z : zones) {
    std::string n = dnsbl::normalise_zone(z);
    if (!n.empty() && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(std::move(n));
  }
  return out;
}

}  // namespace

void check_dnsbl_ip(dns::AsyncResolver& resolver, const IpAddress& ip, const std::vector<std::string>& zones,
                    std::function<void(std::vector<DnsblHit>)> done) {
  IpAddress client = dns::unmap_v4(ip);
  std::vector<Question> questions;
  auto z = zones_of(zones);
  for (size_t i = 0; i < z.size(); ++i) {
    std::string name = dnsbl::ip_query(client, z[i]);
    if (dns::is_query_name(name)) questions.push_back({i, z[i], client.to_string(), std::move(name)});
  }
  ask_all(resolver, std::move(questions), std::move(done));
}

void check_dnsbl_hosts(dns::AsyncResolver& resolver, const std::vector<std::string>& hosts,
                       const std::vector<std::string>& zones, std::function<void(std::vector<DnsblHit>)> done) {
  std::vector<Question> questions;
  auto z = zones_of(zones);
  auto keys = dnsbl::host_keys(hosts);
  for (size_t i = 0; i < z.size(); ++i) {
    for (const auto& key : keys) {
      std::string name = key + "." + z[i];
      if (dns::is_query_name(name)) questions.push_back({i, z[i], key, std::move(name)});
    }
  }
  ask_all(resolver, std::move(questions), std::move(done));
}

}  // namespace mxguard::auth
