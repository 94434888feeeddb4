// Loads and validates the engine's TOML configuration.
#include "mxguard/core/config.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <cerrno>
#include <fmt/format.h>
#include <set>
#include <toml++/toml.h>

#include "mxguard/core/strings.hpp"

namespace mxguard {

const char* const kDemoConfig = R"(# MxGuard embedded demo configuration
hostname  = "mx.demo.invalid"
state_dir = "./mxguard-state"

[smtp]
listen = ["127.0.0.1:2525", "[::1]:2525"]
shards = 0

[dns]
servers = ["127.0.0.1:53"]

# No SPF, DKIM key, DMARC, DNSBL or HELO lookups: a demo machine seldom runs a
# resolver on 127.0.0.1:53, and every check would wait for its timeout before
# the 250 (9.6 s a message). The resolver is still used for delivery, and the
# demo domain's backend is an address literal that needs none.
[scan]
network_checks = false

[onboarding]
mx_hosts = ["mx.demo.invalid"]
)";

std::string ListenAddress::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

bool parse_host_port(std::string_view s, uint16_t default_port, std::string& host,
                     uint16_t& port) {
  std::string_view h = s, p;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos) return false;
    h = s.substr(1, close - 1);
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      p = rest.substr(1);
      if (p.empty()) return false;
    }
  } else if (auto colon = s.rfind(':'); colon != std::string_view::npos) {
    if (s.find(':') != colon) {
      h = s;  // bare IPv6 literal without a port
    } else {
      h = s.substr(0, colon);
      p = s.substr(colon + 1);
      if (p.empty()) return false;
    }
  }
  if (h.empty()) return false;
  port = default_port;
  if (!p.empty()) {
    auto v = parse_u64(p);
    if (!v || *v == 0 || *v > 65535) return false;
    port = static_cast<uint16_t>(*v);
  }
  host = std::string(h);
  return true;
}

namespace {

class Reader {
 public:
  explicit Reader(std::string_view origin) : origin_(origin) {}

  [[noreturn]] void fail(std::string_view key, std::string_view why) const {
    throw ConfigError(fmt::format("{}: key '{}': {}", origin_, key, why));
  }

  // Rejects any key in `table` not listed in `known`.
  void check_known(const toml::table& table, std::string_view prefix,
                   const std::set<std::string_view>& known) const {
    for (auto&& [k, v] : table) {
      if (!known.count(k.str())) {
        std::string full = prefix.empty() ? std::string(k.str())
                                          : fmt::format("{}.{}", prefix, k.str());
        fail(full, "unknown key");
      }
    }
  }

  std::string str(const toml::node& n, std::string_view key) const {
    auto v = n.value<std::string>();
    if (!n.is_string() || !v) fail(key, "must be a string");
    return *v;
  }

  int64_t integer(const toml::node& n, std::string_view key, int64_t lo, int64_t hi) const {
    if (!n.is_integer()) fail(key, "must be an integer");
    int64_t v = *n.value<int64_t>();
    if (v < lo || v > hi) fail(key, fmt::format("must be between {} and {}", lo, hi));
    return v;
  }

  Millis duration(const toml::node& n, std::string_view key) const {
    if (n.is_integer()) {
      int64_t v = *n.value<int64_t>();
      if (v < 0) fail(key, "must not be negative");
      return Millis(v * 1000);
    }
    auto ms = parse_duration_ms(str(n, key));
    if (!ms) fail(key, "must be a duration such as \"30s\", \"15m\", \"2h\" or \"7d\"");
    return Millis(static_cast<int64_t>(*ms));
  }

  std::vector<std::string> strings(const toml::node& n, std::string_view key) const {
    const toml::array* arr = n.as_array();
    if (!arr) fail(key, "must be an array of strings");
    std::vector<std::string> out;
    for (auto&& e : *arr) out.push_back(str(e, key));
    return out;
  }

 private:
  std::string origin_;
};

bool valid_hostname(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    char c = h[i];
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

bool valid_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// A list of "IP:port" (or a bare IP with `default_port`) for an HTTP listener.
std::vector<ListenAddress> ip_listen(const Reader& r, const toml::node& n, std::string_view key,
                                     uint16_t default_port) {
  std::vector<ListenAddress> out;
  for (const auto& spec : r.strings(n, key)) {
    ListenAddress a;
    if (!parse_host_port(spec, default_port, a.host, a.port) || !valid_ip_literal(a.host) || a.port == 0)
      r.fail(key, fmt::format("'{}' is not an IP:port address", spec));
    out.push_back(a);
  }
  return out;
}

}  // namespace

Config parse_config(std::string_view toml_text, std::string_view origin) {
  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw ConfigError(fmt::format("{}:{}:{}: {}", origin, where.line, where.column,
                                  e.description()));
  }

  Reader r(origin);
  Config cfg;
  r.check_known(root, "",
                {"hostname", "state_dir", "smtp", "tls", "dns", "delivery", "quarantine", "onboarding", "scan",
                 "rules", "metrics", "web"});

  if (auto n = root.get("hostname")) {
    cfg.hostname = r.str(*n, "hostname");
    if (!valid_hostname(cfg.hostname)) r.fail("hostname", "must be a valid host name");
  }
  if (auto n = root.get("state_dir")) {
    cfg.state_dir = r.str(*n, "state_dir");
    if (cfg.state_dir.empty()) r.fail("state_dir", "must not be empty");
  }

  auto section = [&](std::string_view name) -> const toml::table* {
    const toml::node* n = root.get(name);
    if (!n) return nullptr;
    if (!n->is_table()) r.fail(name, "must be a table");
    return n->as_table();
  };

  if (const toml::table* t = section("smtp")) {
    SmtpConfig& s = cfg.smtp;
    r.check_known(*t, "smtp",
                  {"listen", "shards", "max_message_size", "max_line_length", "max_recipients",
                   "max_errors", "max_junk_commands", "max_connections_per_ip",
                   "max_connections", "greeting_delay", "command_timeout", "data_timeout",
                   "session_timeout", "shutdown_timeout", "commit_delay", "pin_shards",
                   "max_connection_rate", "max_message_rate", "ipv6_prefix", "min_data_rate",
                   "data_rate_window", "postmaster", "tracking_days"});
    if (auto n = t->get("listen")) {
      s.listen.clear();
      for (const auto& spec : r.strings(*n, "smtp.listen")) {
        ListenAddress a;
        if (!parse_host_port(spec, 25, a.host, a.port) || !valid_ip_literal(a.host))
          r.fail("smtp.listen", fmt::format("'{}' is not an IP:port address", spec));
        s.listen.push_back(a);
      }
      if (s.listen.empty()) r.fail("smtp.listen", "needs at least one address");
    }
    if (auto n = t->get("shards")) s.shards = static_cast<unsigned>(r.integer(*n, "smtp.shards", 0, 1024));
    if (auto n = t->get("max_message_size"))
      s.max_message_size = static_cast<uint64_t>(r.integer(*n, "smtp.max_message_size", 1024, 1LL << 31));
    if (auto n = t->get("max_line_length"))
      s.max_line_length = static_cast<size_t>(r.integer(*n, "smtp.max_line_length", 78, 1 << 20));
    if (auto n = t->get("max_recipients"))
      s.max_recipients = static_cast<unsigned>(r.integer(*n, "smtp.max_recipients", 1, 100'000));
    if (auto n = t->get("tracking_days"))
      s.tracking_days = static_cast<unsigned>(r.integer(*n, "smtp.tracking_days", 1, 3650));
    if (auto n = t->get("max_errors"))
      s.max_errors = static_cast<unsigned>(r.integer(*n, "smtp.max_errors", 1, 1000));
    if (auto n = t->get("max_junk_commands"))
      s.max_junk_commands = static_cast<unsigned>(r.integer(*n, "smtp.max_junk_commands", 1, 1000));
    if (auto n = t->get("max_connections_per_ip"))
      s.max_connections_per_ip =
          static_cast<unsigned>(r.integer(*n, "smtp.max_connections_per_ip", 1, 1'000'000));
    if (auto n = t->get("max_connections"))
      s.max_connections = static_cast<unsigned>(r.integer(*n, "smtp.max_connections", 1, 4'000'000));
    if (auto n = t->get("max_connection_rate"))
      s.max_connection_rate = static_cast<unsigned>(r.integer(*n, "smtp.max_connection_rate", 0, 10'000'000));
    if (auto n = t->get("max_message_rate"))
      s.max_message_rate = static_cast<unsigned>(r.integer(*n, "smtp.max_message_rate", 0, 10'000'000));
    if (auto n = t->get("ipv6_prefix"))
      s.ipv6_prefix = static_cast<unsigned>(r.integer(*n, "smtp.ipv6_prefix", 16, 128));
    if (auto n = t->get("min_data_rate"))
      s.min_data_rate = static_cast<unsigned>(r.integer(*n, "smtp.min_data_rate", 0, 1'000'000'000));
    if (auto n = t->get("data_rate_window")) s.data_rate_window = r.duration(*n, "smtp.data_rate_window");
    if (auto n = t->get("greeting_delay")) s.greeting_delay = r.duration(*n, "smtp.greeting_delay");
    if (auto n = t->get("command_timeout")) s.command_timeout = r.duration(*n, "smtp.command_timeout");
    if (auto n = t->get("data_timeout")) s.data_timeout = r.duration(*n, "smtp.data_timeout");
    if (auto n = t->get("session_timeout")) s.session_timeout = r.duration(*n, "smtp.session_timeout");
    if (auto n = t->get("shutdown_timeout")) s.shutdown_timeout = r.duration(*n, "smtp.shutdown_timeout");
    if (auto n = t->get("commit_delay")) s.commit_delay = r.duration(*n, "smtp.commit_delay");
    if (auto n = t->get("pin_shards")) {
      if (!n->is_boolean()) r.fail("smtp.pin_shards", "must be true or false");
      s.pin_shards = *n->value<bool>();
    }
    if (auto n = t->get("postmaster")) {
      // It becomes an envelope recipient as it is, so only a plain
      // local@domain: an unquoted local part without relay characters.
      s.postmaster = r.str(*n, "smtp.postmaster");
      size_t at = s.postmaster.rfind('@');
      bool ok = at != std::string::npos && at > 0 && at <= 64 && valid_hostname(s.postmaster.substr(at + 1)) &&
                s.postmaster.front() != '.' && s.postmaster[at - 1] != '.' &&
                s.postmaster.find("..") == std::string::npos;
      for (size_t i = 0; ok && i < at; ++i) {
        char c = s.postmaster[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             std::string_view("#$&'*+-/=?^_`{|}~.").find(c) != std::string_view::npos;
      }
      if (!ok)
        r.fail("smtp.postmaster", fmt::format("'{}' is not an address such as postmaster@example.com", s.postmaster));
      s.postmaster = s.postmaster.substr(0, at + 1) + to_lower(s.postmaster.substr(at + 1));
    }
    if (s.command_timeout.count() == 0) r.fail("smtp.command_timeout", "must be positive");
    if (s.data_timeout.count() == 0) r.fail("smtp.data_timeout", "must be positive");
    if (s.session_timeout.count() == 0) r.fail("smtp.session_timeout", "must be positive");
    if (s.data_rate_window.count() < 1000) r.fail("smtp.data_rate_window", "must be at least 1s");
  }

  if (const toml::table* t = section("tls")) {
    r.check_known(*t, "tls", {"certificate", "private_key", "ciphers", "ciphersuites"});
    if (auto n = t->get("certificate")) cfg.tls.certificate = r.str(*n, "tls.certificate");
    if (auto n = t->get("private_key")) cfg.tls.private_key = r.str(*n, "tls.private_key");
    // Whether OpenSSL knows the names is checked where the context is made
    // (the start and --check-config); an empty list would turn TLS off quietly.
    if (auto n = t->get("ciphers")) cfg.tls.ciphers = r.str(*n, "tls.ciphers");
    if (auto n = t->get("ciphersuites")) cfg.tls.ciphersuites = r.str(*n, "tls.ciphersuites");
    if (cfg.tls.ciphers.empty()) r.fail("tls.ciphers", "must not be empty");
    if (cfg.tls.ciphersuites.empty()) r.fail("tls.ciphersuites", "must not be empty");
    if (cfg.tls.certificate.empty() != cfg.tls.private_key.empty())
      r.fail(cfg.tls.certificate.empty() ? "tls.certificate" : "tls.private_key",
             "tls.certificate and tls.private_key must be set together");
  }

  if (const toml::table* t = section("dns")) {
    r.check_known(*t, "dns", {"servers", "timeout"});
    if (auto n = t->get("servers")) {
      cfg.dns.servers = r.strings(*n, "dns.servers");
      for (const auto& spec : cfg.dns.servers) {
        std::string h;
        uint16_t p;
        if (!parse_host_port(spec, 53, h, p) || !valid_ip_literal(h))
          r.fail("dns.servers", fmt::format("'{}' is not an IP[:port] address", spec));
      }
    }
    if (auto n = t->get("timeout")) cfg.dns.timeout = r.duration(*n, "dns.timeout");
    if (cfg.dns.timeout.count() == 0) r.fail("dns.timeout", "must be positive");
  }

  if (const toml::table* t = section("delivery")) {
    r.check_known(*t, "delivery", {"retry_interval", "max_queue_lifetime", "max_per_backend", "max_messages",
                                   "connect_timeout", "command_timeout", "mx_port", "dane_trust_anchor",
                                   "callout_positive_ttl", "callout_negative_ttl", "callout_timeout",
                                   "connection_cache_time"});
    if (auto n = t->get("connection_cache_time"))
      cfg.delivery.connection_cache_time = r.duration(*n, "delivery.connection_cache_time");
    if (auto n = t->get("callout_positive_ttl"))
      cfg.delivery.callout_positive_ttl = r.duration(*n, "delivery.callout_positive_ttl");
    if (auto n = t->get("callout_negative_ttl"))
      cfg.delivery.callout_negative_ttl = r.duration(*n, "delivery.callout_negative_ttl");
    if (auto n = t->get("callout_timeout")) cfg.delivery.callout_timeout = r.duration(*n, "delivery.callout_timeout");
    if (cfg.delivery.callout_timeout.count() == 0) r.fail("delivery.callout_timeout", "must be positive");
    if (auto n = t->get("max_per_backend"))
      cfg.delivery.max_per_backend = static_cast<unsigned>(r.integer(*n, "delivery.max_per_backend", 1, 1000));
    if (auto n = t->get("max_messages"))
      cfg.delivery.max_messages = static_cast<unsigned>(r.integer(*n, "delivery.max_messages", 1, 100'000));
    if (auto n = t->get("connect_timeout"))
      cfg.delivery.connect_timeout = r.duration(*n, "delivery.connect_timeout");
    if (auto n = t->get("command_timeout"))
      cfg.delivery.command_timeout = r.duration(*n, "delivery.command_timeout");
    if (auto n = t->get("mx_port"))
      cfg.delivery.mx_port = static_cast<uint16_t>(r.integer(*n, "delivery.mx_port", 1, 65535));
    if (auto n = t->get("dane_trust_anchor"))
      cfg.delivery.dane_trust_anchor = r.str(*n, "delivery.dane_trust_anchor");
    if (cfg.delivery.connect_timeout.count() == 0) r.fail("delivery.connect_timeout", "must be positive");
    if (cfg.delivery.command_timeout.count() == 0) r.fail("delivery.command_timeout", "must be positive");
    if (auto n = t->get("retry_interval"))
      cfg.delivery.retry_interval = r.duration(*n, "delivery.retry_interval");
    if (auto n = t->get("max_queue_lifetime"))
      cfg.delivery.max_queue_lifetime = r.duration(*n, "delivery.max_queue_lifetime");
    if (cfg.delivery.retry_interval.count() == 0) r.fail("delivery.retry_interval", "must be positive");
  }

  if (const toml::table* t = section("quarantine")) {
    r.check_known(*t, "quarantine", {"purge_interval"});
    if (auto n = t->get("purge_interval")) cfg.quarantine.purge_interval = r.duration(*n, "quarantine.purge_interval");
    if (cfg.quarantine.purge_interval.count() == 0) r.fail("quarantine.purge_interval", "must be positive");
  }

  if (const toml::table* t = section("onboarding")) {
    r.check_known(*t, "onboarding", {"verify_label", "mx_hosts"});
    if (auto n = t->get("verify_label")) cfg.onboarding.verify_label = r.str(*n, "onboarding.verify_label");
    if (auto n = t->get("mx_hosts")) {
      cfg.onboarding.mx_hosts = r.strings(*n, "onboarding.mx_hosts");
      for (const auto& h : cfg.onboarding.mx_hosts)
        if (!valid_hostname(h)) r.fail("onboarding.mx_hosts", fmt::format("'{}' is not a host name", h));
    }
  }
  if (const toml::table* t = section("metrics")) {
    r.check_known(*t, "metrics", {"listen"});
    if (auto n = t->get("listen")) cfg.metrics.listen = ip_listen(r, *n, "metrics.listen", 9925);
  }
  if (const toml::table* t = section("web")) {
    r.check_known(*t, "web", {"listen", "public_url", "certificate", "private_key", "insecure_http", "static_dir",
                              "session_idle", "session_lifetime"});
    if (auto n = t->get("listen")) cfg.web.listen = ip_listen(r, *n, "web.listen", 443);
    if (auto n = t->get("public_url")) {
      cfg.web.public_url = r.str(*n, "web.public_url");
      std::string_view u = cfg.web.public_url;
      std::string_view rest = u.substr(u.find("://") == std::string_view::npos ? 0 : u.find("://") + 3);
      bool scheme = u.starts_with("https://") || u.starts_with("http://");
      if (!scheme || rest.empty() || rest.find_first_of("/?# ") != std::string_view::npos)
        r.fail("web.public_url", "must be \"https://host\" or \"https://host:port\", without a path");
    }
    if (auto n = t->get("certificate")) cfg.web.certificate = r.str(*n, "web.certificate");
    if (auto n = t->get("private_key")) cfg.web.private_key = r.str(*n, "web.private_key");
    if (cfg.web.certificate.empty() != cfg.web.private_key.empty())
      r.fail(cfg.web.certificate.empty() ? "web.certificate" : "web.private_key",
             "web.certificate and web.private_key must be set together");
    if (auto n = t->get("insecure_http")) {
      if (!n->is_boolean()) r.fail("web.insecure_http", "must be true or false");
      cfg.web.insecure_http = *n->value<bool>();
    }
    if (cfg.web.insecure_http) {
      for (const auto& a : cfg.web.listen)
        if (a.host != "127.0.0.1" && a.host != "::1")
          r.fail("web.insecure_http", fmt::format("plain HTTP only on loopback; web.listen has {}", a.to_string()));
    }
    if (auto n = t->get("static_dir")) cfg.web.static_dir = r.str(*n, "web.static_dir");
    if (auto n = t->get("session_idle")) cfg.web.session_idle = r.duration(*n, "web.session_idle");
    if (auto n = t->get("session_lifetime")) cfg.web.session_lifetime = r.duration(*n, "web.session_lifetime");
    if (cfg.web.session_idle.count() <= 0) r.fail("web.session_idle", "must be positive");
    if (cfg.web.session_lifetime < cfg.web.session_idle)
      r.fail("web.session_lifetime", "must not be shorter than web.session_idle");
  }
  if (cfg.web.certificate.empty()) {
    cfg.web.certificate = cfg.tls.certificate;
    cfg.web.private_key = cfg.tls.private_key;
  }
  if (const toml::table* t = section("scan")) {
    r.check_known(*t, "scan",
                  {"rules_dir", "dnsbl_zones", "uribl_zones", "network_checks", "greylist_min_delay",
                   "greylist_window", "mime_max_depth", "mime_max_parts"});
    auto& sc = cfg.scan;
    if (auto n = t->get("rules_dir")) sc.rules_dir = r.str(*n, "scan.rules_dir");
    for (auto [key, list] : {std::pair{"dnsbl_zones", &sc.dnsbl_zones}, std::pair{"uribl_zones", &sc.uribl_zones}}) {
      if (auto n = t->get(key)) {
        std::string name = std::string("scan.") + key;
        *list = r.strings(*n, name);
        for (const auto& z : *list)
          if (!valid_hostname(z)) r.fail(name, fmt::format("'{}' is not a DNS zone", z));
      }
    }
    if (auto n = t->get("network_checks")) {
      if (!n->is_boolean()) r.fail("scan.network_checks", "must be true or false");
      sc.network_checks = *n->value<bool>();
    }
    if (auto n = t->get("greylist_min_delay")) sc.greylist_min_delay = r.duration(*n, "scan.greylist_min_delay");
    if (auto n = t->get("greylist_window")) sc.greylist_window = r.duration(*n, "scan.greylist_window");
    if (sc.greylist_window <= sc.greylist_min_delay)
      r.fail("scan.greylist_window", "must be longer than scan.greylist_min_delay");
    if (auto n = t->get("mime_max_depth")) sc.mime_max_depth = static_cast<unsigned>(r.integer(*n, "scan.mime_max_depth", 1, 100));
    if (auto n = t->get("mime_max_parts")) sc.mime_max_parts = static_cast<unsigned>(r.integer(*n, "scan.mime_max_parts", 1, 100000));
  }
  if (const toml::table* t = section("rules")) {
    r.check_known(*t, "rules", {"keep", "local_dir"});
    if (auto n = t->get("keep")) cfg.rules.keep = static_cast<unsigned>(r.integer(*n, "rules.keep", 1, 1000));
    if (auto n = t->get("local_dir")) {
      cfg.rules.local_dir = r.str(*n, "rules.local_dir");
      if (cfg.rules.local_dir.empty()) r.fail("rules.local_dir", "must not be empty (leave it out for the default)");
    }
  }
  // The local layer lives on the data partition by default: an appliance's
  // root (and /etc) is read-only.
  if (cfg.rules.local_dir.empty()) cfg.rules.local_dir = cfg.state_dir + "/rules/local";
  return cfg;
}

Config load_config_file(const std::string& path) {
  std::string text;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw ConfigError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  std::fclose(f);
  return parse_config(text, path);
}

std::string config_source(const std::string& cli_path) {
  if (!cli_path.empty()) return cli_path;
  if (const char* env = std::getenv("MXGUARD_CONFIG"); env && *env) return env;
  if (access("/etc/mxguard/mxguard.toml", R_OK) == 0) return "/etc/mxguard/mxguard.toml";
  return {};
}

Config resolve_config(const std::string& cli_path) {
  std::string path = config_source(cli_path);
  if (!path.empty()) return load_config_file(path);
  return parse_config(kDemoConfig, "<embedded demo config>");
}

}  // namespace mxguard
