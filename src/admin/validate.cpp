// Field checks for console input (customer names, backends, option values, ids).
#include "mxguard/admin/validate.hpp"

#include <arpa/inet.h>

#include <vector>

#include <fmt/format.h>

#include "mxguard/core/config.hpp"
#include "mxguard/core/strings.hpp"
#include "mxguard/smtp/address.hpp"
#include "mxguard/store/envelope.hpp"
#include "mxguard/admin/text.hpp"

namespace mxguard::admin {

namespace {

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

bool is_ipv4(const std::string& s) {
  unsigned char buf[4];
  return inet_pton(AF_INET, s.c_str(), buf) == 1;
}

bool is_ipv6(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// The text parse_host_port would read as the port, so a refusal can say
// whether the port or the host was the problem.
std::string_view port_text(std::string_view spec) {
  if (!spec.empty() && spec.front() == '[') {
    auto close = spec.find("]:");
    return close == std::string_view::npos ? std::string_view() : spec.substr(close + 2);
  }
  auto colon = spec.rfind(':');
  if (colon == std::string_view::npos || spec.find(':') != colon) return {};
  return spec.substr(colon + 1);
}

Result<std::string> check_backend_host(std::string host, bool bracketed) {
  if (host.find(':') != std::string::npos || bracketed) {
    if (!is_ipv6(host)) return Error{fmt::format("backend host '{}' is not a valid IPv6 address", printable(host))};
    return to_lower(host);
  }
  if (is_ipv4(host)) return host;
  // A trailing dot is the fully-qualified spelling of the same host name.
  if (!host.empty() && host.back() == '.') host.pop_back();
  host = to_lower(host);
  if (!smtp::valid_domain(host, false) || numeric_tld(host))
    return Error{fmt::format("backend host '{}' is not a valid host name or IP address", printable(host))};
  return host;
}

}  // namespace

Status check_customer_name(std::string_view name) {
  if (name.empty()) return Error{"customer name is empty"};
  if (name.size() > 64) return Error{"customer name is longer than 64 characters"};
  for (char c : name) {
    if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
      return Error{fmt::format("customer name '{}' may only contain A-Z, a-z, 0-9, '.', '_' and '-'",
                               printable(name))};
  }
  return {};
}

Result<Backend> parse_backend(std::string_view spec) {
  if (spec.empty()) return Error{"backend is empty"};
  Backend b;
  if (!parse_host_port(spec, 25, b.host, b.port)) {
    std::string_view port = port_text(spec);
    if (!port.empty()) {
      auto v = parse_u64(port);
      if (!v || *v == 0 || *v > 65535)
        return Error{fmt::format("backend port '{}' is not a number from 1 to 65535", printable(port))};
    }
    return Error{fmt::format("backend '{}' is not HOST[:PORT] (IPv6 as [ADDRESS]:PORT)", printable(spec))};
  }
  auto host = check_backend_host(std::move(b.host), spec.front() == '[');
  if (!host) return Error{host.error()};
  b.host = std::move(*host);
  return b;
}

std::string format_backend(std::string_view host, uint16_t port) {
  if (host.find(':') != std::string_view::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Status check_choice(std::string_view option, std::string_view value,
                    std::initializer_list<std::string_view> allowed) {
  std::string list;
  for (auto a : allowed) {
    if (value == a) return {};
    list += list.empty() ? "" : ", ";
    list += a;
  }
  return Error{fmt::format("{} must be one of {} (not '{}')", option, list, printable(value))};
}

Status check_auth_user(std::string_view user) {
  if (user.empty() || user.size() > 255) return Error{"--auth-user must be 1 to 255 characters"};
  for (unsigned char c : user)
    if (c <= 0x20 || c >= 0x7f) return Error{"--auth-user may only contain printable ASCII without spaces"};
  return {};
}

Status check_message_id(std::string_view id) {
  bool safe = !id.empty() && id.size() <= 128;
  for (char c : id) safe = safe && (is_alnum(c) || c == '.' || c == '_' || c == '-');
  if (!safe || store::shard_of_message_id(id) < 0)
    return Error{fmt::format("'{}' is not a message id", printable(id))};
  return {};
}

bool numeric_tld(std::string_view name) {
  auto dot = name.rfind('.');
  std::string_view tld = dot == std::string_view::npos ? name : name.substr(dot + 1);
  if (tld.empty()) return false;
  for (char c : tld)
    if (c < '0' || c > '9') return false;
  return true;
}

namespace {

// 4 or 6 when `text` is an IPv4 or IPv6 address, else 0.
int ip_family(const std::string& text) { return is_ipv4(text) ? 4 : is_ipv6(text) ? 6 : 0; }

}  // namespace

Result<std::string> static_network_lines(std::string_view address, std::string_view gateway,
                                         std::string_view dns) {
  auto slash = address.find('/');
  if (slash == std::string_view::npos)
    return Error{fmt::format("address '{}' needs a prefix length (e.g. 192.0.2.10/24)", printable(address))};
  std::string ip(address.substr(0, slash));
  int family = ip_family(ip);
  if (family == 0) return Error{fmt::format("address '{}' is not an IPv4 or IPv6 address", printable(ip))};
  auto prefix = parse_u64(address.substr(slash + 1));
  unsigned max_prefix = family == 4 ? 32 : 128;
  if (!prefix || *prefix == 0 || *prefix > max_prefix)
    return Error{fmt::format("prefix length '{}' is not a number from 1 to {}", printable(address.substr(slash + 1)),
                             max_prefix)};
  std::string out = fmt::format("Address={}/{}\n", ip, *prefix);
  if (!gateway.empty()) {
    std::string gw(gateway);
    int gw_family = ip_family(gw);
    if (gw_family == 0) return Error{fmt::format("gateway '{}' is not an IP address", printable(gw))};
    if (gw_family != family)
      return Error{fmt::format("gateway {} is IPv{}, the address IPv{}", gw, gw_family, family)};
    out += fmt::format("Gateway={}\n", gw);
  }
  std::vector<std::string> servers;
  size_t i = 0;
  while (i < dns.size()) {
    while (i < dns.size() && dns[i] == ' ') ++i;
    size_t j = dns.find(' ', i);
    if (j == std::string_view::npos) j = dns.size();
    if (j > i) servers.emplace_back(dns.substr(i, j - i));
    i = j;
  }
  if (servers.size() > 3) return Error{fmt::format("{} DNS servers given; at most 3", servers.size())};
  for (const auto& d : servers) {
    if (ip_family(d) == 0) return Error{fmt::format("DNS server '{}' is not an IP address", printable(d))};
    out += fmt::format("DNS={}\n", d);
  }
  return out;
}

}  // namespace mxguard::admin
