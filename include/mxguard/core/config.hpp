// The engine's configuration: one TOML file (DESIGN.md section 4); key names are a contract.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mxguard {

using Millis = std::chrono::milliseconds;

struct ListenAddress {
  std::string host;  // IPv4 or IPv6 literal, without brackets
  uint16_t port = 25;
  std::string to_string() const;
};

struct SmtpConfig {
  std::vector<ListenAddress> listen{{"0.0.0.0", 25}};
  unsigned shards = 0;  // 0 = one per online CPU
  uint64_t max_message_size = 35'883'008;
  size_t max_line_length = 1000;       // text line in DATA, including CRLF
  size_t max_command_length = 512;     // command line, including CRLF
  unsigned max_recipients = 100;
  unsigned max_errors = 20;            // 4xx/5xx replies before we hang up (Postfix hard limit)
  unsigned max_junk_commands = 5;      // unknown or out-of-sequence commands
  unsigned max_connections_per_ip = 50;
  // New connections and messages (MAIL commands) per client per minute, 0 = no
  // limit; allow-listed client addresses are exempt. IPv6 clients are counted
  // per /ipv6_prefix network (one customer's or attacker's allocation).
  unsigned max_connection_rate = 120;
  unsigned max_message_rate = 600;
  unsigned ipv6_prefix = 64;
  unsigned max_connections = 100'000;  // per process
  Millis greeting_delay{0};            // > 0: talking before the banner is refused
  Millis command_timeout{300'000};
  Millis data_timeout{600'000};
  Millis session_timeout{1'800'000};
  // DATA and BDAT content must arrive at min_data_rate bytes per second on
  // average over each data_rate_window (0 = no minimum): a trickle cannot
  // hold a session for data_timeout or session_timeout.
  unsigned min_data_rate = 500;
  Millis data_rate_window{30'000};
  Millis shutdown_timeout{10'000};
  Millis commit_delay{0};
  // Pin shard i to CPU i. Off by default: it helps a dedicated box, and hurts
  // when other busy processes (a load generator, the storage writers) share the cores.
  bool pin_shards = false;  // extra wait to grow a commit batch (0 = commit as soon as idle)
  // Where RCPT TO:<postmaster> (no domain) goes; "" = postmaster@ the oldest active domain.
  std::string postmaster;
  // Decision events (refusals, verdicts, delivery attempts, quarantine actions)
  // are kept this many days for `mxguard track`, then purged.
  unsigned tracking_days = 7;
};

struct TlsConfig {
  // Forward secrecy and AEAD only: no static-RSA key exchange, no CBC
  // (LUCKY13). Operators who must take mail from older senders widen them.
  static constexpr const char* kDefaultCiphers =
      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
      "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
  static constexpr const char* kDefaultCiphersuites =
      "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
  std::string certificate;
  std::string private_key;
  std::string ciphers = kDefaultCiphers;            // TLS 1.2, OpenSSL cipher list syntax
  std::string ciphersuites = kDefaultCiphersuites;  // TLS 1.3
  bool enabled() const { return !certificate.empty(); }
};

struct DnsConfig {
  std::vector<std::string> servers;
  Millis timeout{5000};  // one lookup, retries included
};

struct DeliveryConfig {
  Millis retry_interval{15 * 60'000};
  Millis max_queue_lifetime{7LL * 86'400'000};
  unsigned max_per_backend = 10;   // concurrent connections to one backend (host:port)
  unsigned max_messages = 500;     // messages in delivery at once, per shard
  Millis connection_cache_time{2'000};  // an idle backend connection waits this long for the next message (0 = off)
  Millis connect_timeout{30'000};
  Millis command_timeout{300'000};  // any wait for a reply or a send to finish (RFC 5321 4.5.3.2: 5 min)
  uint16_t mx_port = 25;            // port of MX hosts (DSNs to senders' domains); tests move it
  std::string dane_trust_anchor;    // DNSSEC trust anchor file for tls=dane ("" = DANE domains defer)
  Millis callout_positive_ttl{7LL * 86'400'000};  // recipients=callout: how long "exists" is believed
  Millis callout_negative_ttl{3'600'000};         // and "unknown"
  Millis callout_timeout{20'000};                 // one verification, connect to answer
};

struct ScanConfig {
  // Where the factory rule set is read from when the state dir has no bundle
  // yet ("" = the installed rules, else the source tree's rules/).
  std::string rules_dir;
  std::vector<std::string> dnsbl_zones;  // IP lists asked for the client address
  std::vector<std::string> uribl_zones;  // domain lists asked for URL hosts
  bool network_checks = true;            // SPF, DKIM keys, DMARC, DNSBL, HELO/rDNS (needs dns.servers)
  Millis greylist_min_delay{5 * 60'000};
  Millis greylist_window{36LL * 86'400'000};
  unsigned mime_max_depth = 16;
  unsigned mime_max_parts = 500;
};

// [rules]: the bundle store and the operator's local layer.
struct RulesConfig {
  unsigned keep = 10;      // stored bundles kept after a push (the active and the factory one are never pruned)
  std::string local_dir;   // local *.rules files; "" in the file = state_dir + "/rules/local"
};

struct QuarantineConfig {
  Millis purge_interval{3'600'000};  // how often each shard drops quarantined mail past its domain's retention
};

struct MetricsConfig {
  std::vector<ListenAddress> listen;  // Prometheus /metrics over plain HTTP; empty = off
};

// [web]: mxguard-web, the customer dashboard and its API (HTTPS).
struct WebConfig {
  std::vector<ListenAddress> listen;  // empty = mxguard-web refuses to start
  std::string public_url;             // "https://host[:port]"; the Origin state-changing requests must carry
  std::string certificate;            // "" in the file = tls.certificate
  std::string private_key;            // "" in the file = tls.private_key
  bool insecure_http = false;         // plain HTTP, allowed only when every listen address is loopback (tests, demo)
  std::string static_dir;             // dashboard files; "" = the installed ones, else the source tree's
  Millis session_idle{30 * 60'000};
  Millis session_lifetime{12 * 3'600'000};
};

struct OnboardingConfig {
  std::string verify_label = "_mxguard-verify";
  std::vector<std::string> mx_hosts;
};

struct Config {
  std::string hostname = "localhost";
  std::string state_dir = "/var/lib/mxguard";
  SmtpConfig smtp;
  TlsConfig tls;
  DnsConfig dns;
  DeliveryConfig delivery;
  QuarantineConfig quarantine;
  OnboardingConfig onboarding;
  ScanConfig scan;
  RulesConfig rules;
  MetricsConfig metrics;
  WebConfig web;
};

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses TOML text; `origin` names the file in error messages. Unknown keys
// and bad values throw ConfigError naming the key.
Config parse_config(std::string_view toml_text, std::string_view origin);
Config load_config_file(const std::string& path);

// The embedded default: loopback ports, ./mxguard-state, used by the demo.
extern const char* const kDemoConfig;

// Which config a command-line tool uses: the --config value if given, else
// $MXGUARD_CONFIG, else /etc/mxguard/mxguard.toml if it exists, else the demo.
Config resolve_config(const std::string& cli_path);
// The file resolve_config reads, or empty when it falls back to the embedded demo.
std::string config_source(const std::string& cli_path);

// Parses "host:port", "[v6]:port" or a bare host (default port).
bool parse_host_port(std::string_view s, uint16_t default_port, std::string& host, uint16_t& port);

}  // namespace mxguard
