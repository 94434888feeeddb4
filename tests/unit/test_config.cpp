// Configuration parsing: contract keys, defaults, and errors naming the key.
#include <doctest.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "mxguard/core/config.hpp"
#include "mxguard/core/strings.hpp"

using namespace mxguard;

namespace {
std::string error_of(const std::string& toml) {
  try {
    parse_config(toml, "test.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("config: the DESIGN.md example parses") {
  Config c = parse_config(R"(
hostname  = "mx1.example.net"
state_dir = "/var/lib/mxguard"
[smtp]
listen = ["0.0.0.0:25", "[::1]:2525"]
shards = 0
max_message_size = 35883008
[tls]
certificate = "/etc/mxguard/tls/cert.pem"
private_key = "/etc/mxguard/tls/key.pem"
[dns]
servers = ["127.0.0.1:53"]
[delivery]
retry_interval = "15m"
max_queue_lifetime = "7d"
[onboarding]
verify_label = "_mxguard-verify"
mx_hosts = ["mx1.example.net", "mx2.example.net"]
)",
                          "t");
  CHECK(c.hostname == "mx1.example.net");
  REQUIRE(c.smtp.listen.size() == 2);
  CHECK(c.smtp.listen[1].host == "::1");
  CHECK(c.smtp.listen[1].port == 2525);
  CHECK(c.smtp.max_message_size == 35883008);
  CHECK(c.tls.enabled());
  CHECK(c.tls.ciphersuites == TlsConfig::kDefaultCiphersuites);
  CHECK(parse_config("[tls]\nciphers = \"ECDHE+AESGCM:AES128-GCM-SHA256\"\nciphersuites = \"TLS_AES_128_GCM_SHA256\"",
                     "t").tls.ciphers == "ECDHE+AESGCM:AES128-GCM-SHA256");
  CHECK(c.delivery.retry_interval.count() == 15 * 60 * 1000);
  CHECK(c.delivery.max_queue_lifetime.count() == 7LL * 86400 * 1000);
  CHECK(c.onboarding.mx_hosts.size() == 2);
}

TEST_CASE("config: defaults") {
  Config c = parse_config("", "t");
  CHECK(c.smtp.max_message_size == 35883008);
  CHECK(c.smtp.max_recipients == 100);
  CHECK(c.smtp.tracking_days == 7);
  CHECK(c.smtp.max_line_length == 1000);
  CHECK_FALSE(c.tls.enabled());
  CHECK(c.tls.ciphers == TlsConfig::kDefaultCiphers);
  // Every default suite has forward secrecy (ECDHE) and an AEAD cipher.
  std::string_view list = c.tls.ciphers;
  for (size_t n = 0; !list.empty() && n < 100; ++n) {
    std::string_view suite = list.substr(0, list.find(':'));
    list.remove_prefix(std::min(list.size(), suite.size() + 1));
    CHECK(suite.substr(0, 6) == "ECDHE-");
    CHECK((suite.find("-GCM-") != std::string_view::npos || suite.find("CHACHA20-POLY1305") != std::string_view::npos));
  }
  CHECK(c.delivery.retry_interval.count() == 900000);
  CHECK(c.dns.timeout.count() == 5000);
  CHECK(parse_config("[dns]\ntimeout = \"1500ms\"", "t").dns.timeout.count() == 1500);
}

TEST_CASE("config: errors name the key") {
  CHECK(error_of("hostnme = \"x\"").find("key 'hostnme': unknown key") != std::string::npos);
  CHECK(error_of("[smtp]\nlisten = [\"nowhere\"]").find("smtp.listen") != std::string::npos);
  CHECK(error_of("[smtp]\nlisten = [\"127.0.0.1:99999\"]").find("smtp.listen") != std::string::npos);
  CHECK(error_of("[smtp]\nshards = -1").find("smtp.shards") != std::string::npos);
  CHECK(error_of("[smtp]\nshards = \"two\"").find("smtp.shards") != std::string::npos);
  CHECK(error_of("[smtp]\nbogus = 1").find("smtp.bogus") != std::string::npos);
  CHECK(error_of("[delivery]\nretry_interval = \"soon\"").find("delivery.retry_interval") != std::string::npos);
  CHECK(error_of("[tls]\ncertificate = \"/x\"").find("tls.") != std::string::npos);
  CHECK(error_of("[tls]\nciphers = \"\"").find("tls.ciphers") != std::string::npos);
  CHECK(error_of("[tls]\nciphersuites = \"\"").find("tls.ciphersuites") != std::string::npos);
  CHECK(error_of("[tls]\nciphers = 3").find("tls.ciphers") != std::string::npos);
  CHECK(error_of("[dns]\nservers = [\"dns.example\"]").find("dns.servers") != std::string::npos);
  CHECK(error_of("[dns]\ntimeout = \"soon\"").find("dns.timeout") != std::string::npos);
  CHECK(error_of("[dns]\ntimeout = 0").find("dns.timeout") != std::string::npos);
  CHECK(error_of("[onboarding]\nmx_hosts = [\"bad host\"]").find("onboarding.mx_hosts") != std::string::npos);
  CHECK(error_of("hostname = \"bad host\"").find("hostname") != std::string::npos);
  CHECK(error_of("hostname = ").find("test.toml:1") != std::string::npos);
  CHECK(error_of("smtp = 3").find("smtp") != std::string::npos);
}

TEST_CASE("durations and host:port") {
  CHECK(parse_duration_ms("30s") == 30000u);
  CHECK(parse_duration_ms("15m") == 900000u);
  CHECK(parse_duration_ms("2h") == 7200000u);
  CHECK(parse_duration_ms("7d") == 604800000u);
  CHECK(parse_duration_ms("250ms") == 250u);
  CHECK(parse_duration_ms("10") == 10000u);
  CHECK_FALSE(parse_duration_ms("m"));
  CHECK_FALSE(parse_duration_ms("5w"));
  CHECK_FALSE(parse_duration_ms("-5s"));
  std::string h;
  uint16_t p;
  CHECK(parse_host_port("mail.example:587", 25, h, p));
  CHECK((h == "mail.example" && p == 587));
  CHECK(parse_host_port("[2001:db8::1]:2525", 25, h, p));
  CHECK((h == "2001:db8::1" && p == 2525));
  CHECK(parse_host_port("2001:db8::1", 25, h, p));
  CHECK((h == "2001:db8::1" && p == 25));
  CHECK(parse_host_port("10.0.0.1", 25, h, p));
  CHECK(p == 25);
  CHECK_FALSE(parse_host_port("host:0", 25, h, p));
  CHECK_FALSE(parse_host_port("host:", 25, h, p));
  CHECK_FALSE(parse_host_port("[::1", 25, h, p));
  CHECK_FALSE(parse_host_port(":25", 25, h, p));
}

TEST_CASE("config: smtp.postmaster is a plain address, its domain lower-cased") {
  CHECK(parse_config("", "t").smtp.postmaster.empty());
  CHECK(parse_config("[smtp]\npostmaster = \"Hostmaster@Ops.Example\"", "t").smtp.postmaster ==
        "Hostmaster@ops.example");
  CHECK(parse_config("[smtp]\npostmaster = \"first.last+pm@example.com\"", "t").smtp.postmaster ==
        "first.last+pm@example.com");
  for (const char* bad : {"postmaster", "@example.com", "pm@", "pm@bad host", "a b@example.com", "x%y@example.com",
                          "\"q\"@example.com", ".pm@example.com", "pm.@example.com", "p..m@example.com",
                          "pm@example.com@other.example"}) {
    CAPTURE(bad);
    // A TOML literal string, so the quotes in a bad address stay part of it.
    CHECK(error_of(std::string("[smtp]\npostmaster = '") + bad + "'").find("smtp.postmaster") != std::string::npos);
  }
  CHECK(error_of("[smtp]\npostmaster = 3").find("smtp.postmaster") != std::string::npos);
}

TEST_CASE("config: [rules] keep and local_dir") {
  Config d = parse_config("state_dir = \"/srv/mx\"\n", "t.toml");
  CHECK(d.rules.keep == 10);
  CHECK(d.rules.local_dir == "/srv/mx/rules/local");  // the data partition, not the read-only /etc
  Config c = parse_config("[rules]\nkeep = 3\nlocal_dir = \"/var/lib/site-rules\"\n", "t.toml");
  CHECK(c.rules.keep == 3);
  CHECK(c.rules.local_dir == "/var/lib/site-rules");
  CHECK_THROWS_WITH_AS(parse_config("[rules]\nkeep = 0\n", "t.toml"), doctest::Contains("rules.keep"), ConfigError);
  CHECK_THROWS_WITH_AS(parse_config("[rules]\nlocal_dir = \"\"\n", "t.toml"), doctest::Contains("rules.local_dir"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_config("[rules]\nkept = 3\n", "t.toml"), doctest::Contains("kept"), ConfigError);
}

TEST_CASE("config: metrics.listen is a list of IP:port, absent means off") {
  CHECK(parse_config("", "t").metrics.listen.empty());
  Config c = parse_config("[metrics]\nlisten = [\"127.0.0.1:9925\", \"[::1]:9926\"]\n", "t");
  REQUIRE(c.metrics.listen.size() == 2);
  CHECK(c.metrics.listen[0].host == "127.0.0.1");
  CHECK(c.metrics.listen[0].port == 9925);
  CHECK(c.metrics.listen[1].host == "::1");
  CHECK(c.metrics.listen[1].port == 9926);
  CHECK(parse_config("[metrics]\nlisten = []\n", "t").metrics.listen.empty());
  CHECK(error_of("[metrics]\nlisten = [\"localhost:9925\"]").find("metrics.listen") != std::string::npos);
  CHECK(error_of("[metrics]\nlisten = [\"127.0.0.1:0\"]").find("metrics.listen") != std::string::npos);
  CHECK(error_of("[metrics]\nlisten = \"127.0.0.1:9925\"").find("metrics.listen") != std::string::npos);
  CHECK(error_of("[metrics]\nport = 9925").find("metrics.port") != std::string::npos);
}

TEST_CASE("config: [web] keys, defaults from [tls], and their errors") {
  Config d = parse_config("", "t");
  CHECK(d.web.listen.empty());
  CHECK_FALSE(d.web.insecure_http);
  CHECK(d.web.session_idle == Millis(30 * 60'000));

  const std::string tls = "[tls]\ncertificate = \"/etc/c.pem\"\nprivate_key = \"/etc/k.pem\"\n";
  Config c = parse_config(tls + R"(
[web]
listen = ["0.0.0.0:443", "[::1]:8443"]
public_url = "https://mx1.example.net"
session_idle = "10m"
session_lifetime = "8h"
)", "t");
  REQUIRE(c.web.listen.size() == 2);
  CHECK(c.web.listen[1].host == "::1");
  CHECK(c.web.listen[1].port == 8443);
  CHECK(c.web.public_url == "https://mx1.example.net");
  CHECK(c.web.certificate == "/etc/c.pem");  // from [tls]
  CHECK(c.web.private_key == "/etc/k.pem");
  CHECK(c.web.session_lifetime == Millis(8 * 3'600'000));

  Config own = parse_config(tls + R"(
[web]
certificate = "/etc/w.pem"
private_key = "/etc/wk.pem"
)", "t");
  CHECK(own.web.certificate == "/etc/w.pem");
  CHECK(own.web.private_key == "/etc/wk.pem");

  Config ins = parse_config("[web]\nlisten = [\"127.0.0.1:8080\"]\ninsecure_http = true\n", "t");
  CHECK(ins.web.insecure_http);

  CHECK(error_of("[web]\nlisten = [\"0.0.0.0:8080\"]\ninsecure_http = true\n").find("web.insecure_http") !=
        std::string::npos);
  CHECK(error_of("[web]\nlisten = [\"mx1:443\"]\n").find("web.listen") != std::string::npos);
  CHECK(error_of("[web]\npublic_url = \"mx1.example.net\"\n").find("web.public_url") != std::string::npos);
  CHECK(error_of("[web]\npublic_url = \"https://mx1.example.net/x\"\n").find("web.public_url") != std::string::npos);
  CHECK(error_of("[web]\ncertificate = \"/c.pem\"\n").find("web.private_key") != std::string::npos);
  CHECK(error_of("[web]\ninsecure_http = 1\n").find("web.insecure_http") != std::string::npos);
  CHECK(error_of("[web]\nsession_idle = \"2h\"\nsession_lifetime = \"1h\"\n").find("web.session_lifetime") !=
        std::string::npos);
  CHECK(error_of("[web]\nport = 1\n").find("web.port") != std::string::npos);
}
