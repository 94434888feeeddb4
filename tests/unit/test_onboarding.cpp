// Onboarding input rules: a table of domain names as operators type them,
// the high-value blocklist, the verification token format, and the console
// menu's static network settings.
#include <doctest.h>

#include <optional>
#include <regex>
#include <set>
#include <string>

#include "mxguard/admin/blocklist.hpp"
#include "mxguard/admin/onboarding.hpp"
#include "mxguard/admin/token.hpp"
#include "mxguard/admin/validate.hpp"

using namespace mxguard::admin;

TEST_CASE("onboarding: domain names, valid and invalid (as typed)") {
  struct Case {
    std::string input;
    std::optional<std::string> expect;  // normalized name, or nullopt when refused
  };
  const Case cases[] = {
      {"example.com", "example.com"},
      {"Example.COM", "example.com"},
      {"EXAMPLE.ORG", "example.org"},
      {"mail.example.co.uk", "mail.example.co.uk"},
      {"a.b", "a.b"},
      {"a-b.example", "a-b.example"},
      {"xn--bcher-kva.example", "xn--bcher-kva.example"},
      {"b\xc3\xbc" "cher.example", "xn--bcher-kva.example"},          // IDN: bücher
      {"B\xc3\x9c" "CHER.example", "xn--bcher-kva.example"},          // upper-case Unicode folds
      {"\xe4\xbe\x8b\xe3\x81\x88.jp", "xn--r8jz45g.jp"},             // Japanese label
      {"m\xc3\xbcnchen.de", "xn--mnchen-3ya.de"},
      {"123.example", "123.example"},
      {"0-0.example", "0-0.example"},
      {"sub.sub.sub.example.net", "sub.sub.sub.example.net"},
      {std::string(63, 'a') + ".example", std::string(63, 'a') + ".example"},
      {"wwwx.example", "wwwx.example"},
      {"example.museum", "example.museum"},
      {"x--y.example", "x--y.example"},
      {"", std::nullopt},
      {"localhost", std::nullopt},                 // no dot
      {"com", std::nullopt},
      {"example.com.", std::nullopt},              // trailing dot
      {".example.com", std::nullopt},
      {"example..com", std::nullopt},
      {"-example.com", std::nullopt},
      {"example-.com", std::nullopt},
      {"ex_ample.com", std::nullopt},
      {"exa mple.com", std::nullopt},
      {" example.com", std::nullopt},
      {"example.com ", std::nullopt},
      {"example.com\n", std::nullopt},
      {"example.com\r\nRCPT TO:<x@y>", std::nullopt},
      {std::string("exam\0ple.com", 12), std::nullopt},
      {"\"example.com\"", std::nullopt},
      {"'example.com'", std::nullopt},
      {"<example.com>", std::nullopt},
      {"example.com;rm -rf /", std::nullopt},
      {"$(id).example", std::nullopt},
      {"http://example.com", std::nullopt},
      {"https://example.com/path", std::nullopt},
      {"example.com/", std::nullopt},
      {"www.example.com", std::nullopt},
      {"WWW.Example.com", std::nullopt},
      {"user@example.com", std::nullopt},
      {"@example.com", std::nullopt},
      {"192.0.2.1", std::nullopt},
      {"[192.0.2.1]", std::nullopt},
      {"2001:db8::1", std::nullopt},
      {"10.0.0.300", std::nullopt},
      {std::string(64, 'a') + ".example", std::nullopt},  // label too long
      {std::string(250, 'a').insert(60, ".").insert(120, ".").insert(180, ".") + ".com", std::nullopt},  // > 253
      {"example.com:25", std::nullopt},
      {"*.example.com", std::nullopt},
      {"exa!mple.com", std::nullopt},
      {"example.c\xc3", std::nullopt},              // broken UTF-8
      {"\xe2\x80\x8b" "example.com", "example.com"},  // UTS #46 maps a zero-width space away
      {"ex\xe2\x80\x8b" "ample.com", "example.com"},
  };
  CHECK(std::size(cases) >= 50);
  for (const auto& c : cases) {
    CAPTURE(c.input);
    auto r = normalize_domain(c.input);
    if (c.expect) {
      std::string why = r.ok() ? std::string() : r.error();
      REQUIRE_MESSAGE(r.ok(), why);
      CHECK(*r == *c.expect);
    } else {
      CHECK_FALSE(r.ok());
      if (!r.ok()) {
        CHECK(r.error().find('\n') == std::string::npos);  // one clear line
      }
    }
  }
}

TEST_CASE("onboarding: the high-value blocklist covers names and their subdomains") {
  auto b = Blocklist::parse("# comment\ngmail.com\ngov.uk  # suffix\n\nPayPal.com\n", "test");
  REQUIRE(b.ok());
  CHECK(b->size() == 3);
  CHECK(b->match("gmail.com") == "gmail.com");
  CHECK(b->match("mx.gmail.com") == "gmail.com");
  CHECK(b->match("hmrc.gov.uk") == "gov.uk");
  CHECK(b->match("paypal.com") == "paypal.com");
  CHECK_FALSE(b->match("notgmail.com"));
  CHECK_FALSE(b->match("gmail.com.evil.example"));
  CHECK_FALSE(b->match("uk"));
  auto bad = Blocklist::parse("ok.example\nnot a domain\n", "list.txt");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error() == "list.txt:2: 'not a domain' is not a domain name");
  auto shipped = Blocklist::load_default();
  REQUIRE(shipped.ok());
  CHECK(shipped->match("outlook.com"));
  CHECK(shipped->match("tax.service.gov.uk"));
  CHECK_FALSE(shipped->match("example.com"));
}

TEST_CASE("onboarding: verification tokens are mxg- and 32 base62 characters, all different") {
  std::regex shape("^mxg-[A-Za-z0-9]{32}$");
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto t = new_verify_token();
    REQUIRE(t.ok());
    CHECK(std::regex_match(*t, shape));
    seen.insert(*t);
  }
  CHECK(seen.size() == 200);
}

TEST_CASE("console menu: a static address is checked before anything is written") {
  using mxguard::admin::static_network_lines;
  auto ok = static_network_lines("192.0.2.10/24", "192.0.2.1", " 192.0.2.53  2001:db8::53 ");
  REQUIRE(ok.ok());
  CHECK(*ok == "Address=192.0.2.10/24\nGateway=192.0.2.1\nDNS=192.0.2.53\nDNS=2001:db8::53\n");
  CHECK(*static_network_lines("2001:db8::10/64", "", "") == "Address=2001:db8::10/64\n");
  CHECK(*static_network_lines("10.0.2.15/24", "10.0.2.2", "10.0.2.3") ==
        "Address=10.0.2.15/24\nGateway=10.0.2.2\nDNS=10.0.2.3\n");

  auto err = [](std::string_view a, std::string_view g, std::string_view d) {
    auto r = static_network_lines(a, g, d);
    REQUIRE_FALSE(r.ok());
    return r.error();
  };
  CHECK(err("192.0.2.10", "", "") == "address '192.0.2.10' needs a prefix length (e.g. 192.0.2.10/24)");
  CHECK(err("192.0.2.300/24", "", "") == "address '192.0.2.300' is not an IPv4 or IPv6 address");
  CHECK(err("mx.example/24", "", "") == "address 'mx.example' is not an IPv4 or IPv6 address");
  CHECK(err("192.0.2.10/33", "", "") == "prefix length '33' is not a number from 1 to 32");
  CHECK(err("192.0.2.10/0", "", "") == "prefix length '0' is not a number from 1 to 32");
  CHECK(err("2001:db8::1/129", "", "") == "prefix length '129' is not a number from 1 to 128");
  CHECK(err("192.0.2.10/24x", "", "") == "prefix length '24x' is not a number from 1 to 32");
  CHECK(err("192.0.2.10/24", "gw.example", "") == "gateway 'gw.example' is not an IP address");
  CHECK(err("192.0.2.10/24", "2001:db8::1", "") == "gateway 2001:db8::1 is IPv6, the address IPv4");
  // A line break or '=' cannot smuggle another setting into the file.
  CHECK(err("192.0.2.10/24", "192.0.2.1\nDHCP=yes", "") == "gateway '192.0.2.1\\x0aDHCP=yes' is not an IP address");
  CHECK(err("192.0.2.10/24", "", "192.0.2.53 DHCP=yes") == "DNS server 'DHCP=yes' is not an IP address");
  CHECK(err("192.0.2.10/24", "", "1.1.1.1 8.8.8.8 9.9.9.9 192.0.2.53") == "4 DNS servers given; at most 3");
}
