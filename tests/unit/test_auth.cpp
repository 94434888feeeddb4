// Unit tests for the auth module's pure parts (SPF records and macros, CIDR
// matching, DMARC records and alignment, DNSBL names, HELO forms) and for the
// callback contract of the checks and the AsyncResolver, without sockets.
#include <doctest.h>
#include <poll.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mxguard/auth/checks.hpp"
#include "mxguard/auth/dmarc_record.hpp"
#include "mxguard/auth/dnsbl.hpp"
#include "mxguard/auth/spf_record.hpp"
#include "mxguard/dns/async_resolver.hpp"
#include "mxguard/dns/names.hpp"
#include "mxguard/dns/rdata.hpp"

using namespace mxguard;
using namespace mxguard::auth;

namespace {

IpAddress ip(const char* text) {
  auto a = IpAddress::parse(text);
  REQUIRE(a);
  return *a;
}

// RFC 7208 7.4: the sender and addresses of the worked examples.
spf::MacroContext rfc_context(const char* client = "192.0.2.3") {
  spf::MacroContext c;
  c.sender = "strong-bad@email.example.com";
  c.local_part = "strong-bad";
  c.sender_domain = "email.example.com";
  c.domain = "email.example.com";
  c.ip = ip(client);
  c.helo = "mx.example.org";
  return c;
}

std::string expand(const char* text, const spf::MacroContext& c, bool exp_text = false) {
  auto r = spf::expand(text, c, exp_text);
  REQUIRE_MESSAGE(r.ok(), std::string(text) << ": " << r.error());
  return *r;
}

spf::Record parse_ok(const char* text) {
  auto r = spf::parse_record(text);
  REQUIRE_MESSAGE(r.ok(), std::string(text) << ": " << r.error());
  return *r;
}

bool parses(const char* text) { return spf::parse_record(text).ok(); }

// A resolver that never reaches a server in these tests: only post(),
// immediate failures and cancellation are exercised.
std::unique_ptr<dns::AsyncResolver> offline_resolver() {
  dns::ResolverOptions o;
  o.servers = {"127.0.0.1:9"};
  o.timeout = Millis(1000);
  auto r = dns::AsyncResolver::create(o);
  REQUIRE_MESSAGE(r.ok(), r.error());
  return std::move(*r);
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

}  // namespace

// -- SPF record selection and parsing ----------------------------------------

TEST_CASE("spf: record selection") {
  CHECK(spf::is_spf_record("v=spf1"));
  CHECK(spf::is_spf_record("V=SPF1 -all"));
  CHECK_FALSE(spf::is_spf_record("v=spf10 -all"));
  CHECK_FALSE(spf::is_spf_record("v=spf1-all"));
  CHECK_FALSE(spf::is_spf_record(" v=spf1 -all"));

  auto none = spf::select_record({"google-site-verification=x", "v=DMARC1; p=none"});
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  auto one = spf::select_record({"other", "v=spf1 mx -all"});
  REQUIRE(one.ok());
  CHECK(**one == "v=spf1 mx -all");
  CHECK_FALSE(spf::select_record({"v=spf1 -all", "v=spf1 +all"}).ok());
}

TEST_CASE("spf: mechanisms, qualifiers and modifiers") {
  auto r = parse_ok("v=spf1 +a -mx:example.org/24 ~ptr ?ip4:192.0.2.0/24 ip6:2001:db8::/32 "
                    "include:_spf.example.com exists:%{i}.bl.example.net a:b.example.com/26//64 mx//48 "
                    "redirect=_spf.example.org exp=explain.%{d} x-custom=anything all");
  REQUIRE(r.mechanisms.size() == 10);
  CHECK(r.mechanisms[0].kind == spf::Kind::kA);
  CHECK(r.mechanisms[0].qualifier == spf::Qualifier::kPass);
  CHECK(r.mechanisms[0].domain_spec.empty());
  CHECK(r.mechanisms[1].kind == spf::Kind::kMx);
  CHECK(r.mechanisms[1].qualifier == spf::Qualifier::kFail);
  CHECK(r.mechanisms[1].domain_spec == "example.org");
  CHECK(r.mechanisms[1].cidr4 == 24);
  CHECK(r.mechanisms[1].cidr6 == 128);
  CHECK(r.mechanisms[2].qualifier == spf::Qualifier::kSoftFail);
  CHECK(r.mechanisms[3].qualifier == spf::Qualifier::kNeutral);
  CHECK(r.mechanisms[3].network.to_string() == "192.0.2.0");
  CHECK(r.mechanisms[3].cidr4 == 24);
  CHECK(r.mechanisms[4].network.v6);
  CHECK(r.mechanisms[4].cidr6 == 32);
  CHECK(r.mechanisms[5].kind == spf::Kind::kInclude);
  CHECK(r.mechanisms[6].domain_spec == "%{i}.bl.example.net");
  CHECK(r.mechanisms[7].domain_spec == "b.example.com");
  CHECK(r.mechanisms[7].cidr4 == 26);
  CHECK(r.mechanisms[7].cidr6 == 64);
  CHECK(r.mechanisms[8].cidr4 == 32);
  CHECK(r.mechanisms[8].cidr6 == 48);
  CHECK(r.mechanisms[9].kind == spf::Kind::kAll);
  CHECK(r.redirect == "_spf.example.org");
  CHECK(r.exp == "explain.%{d}");
}

TEST_CASE("spf: case, spacing and bare version") {
  CHECK(parse_ok("v=spf1").mechanisms.empty());
  auto r = parse_ok("v=spf1   IP4:192.0.2.1   -ALL  ");
  REQUIRE(r.mechanisms.size() == 2);
  CHECK(r.mechanisms[0].cidr4 == 32);
  CHECK(parse_ok("v=spf1 Redirect=example.com").redirect == "example.com");
  CHECK(parse_ok("v=spf1 a:example.com.").mechanisms[0].domain_spec == "example.com.");
  CHECK(parse_ok("v=spf1 a:foo-bar.1-2").mechanisms.size() == 1);  // hyphenated numeric top label
}

TEST_CASE("spf: syntax errors are permerrors") {
  CHECK_FALSE(parses("v=spf1 foo"));                      // unknown mechanism
  CHECK_FALSE(parses("v=spf1 include"));                  // needs a domain
  CHECK_FALSE(parses("v=spf1 include:"));                 // empty domain
  CHECK_FALSE(parses("v=spf1 exists"));
  CHECK_FALSE(parses("v=spf1 all:example.com"));
  CHECK_FALSE(parses("v=spf1 ip4:192.0.2.300"));
  CHECK_FALSE(parses("v=spf1 ip4:192.0.2.1/33"));
  CHECK_FALSE(parses("v=spf1 ip4:192.0.2.1/024"));        // no leading zeros
  CHECK_FALSE(parses("v=spf1 ip4:2001:db8::1"));
  CHECK_FALSE(parses("v=spf1 ip6:2001:db8::/129"));
  CHECK_FALSE(parses("v=spf1 ip6:192.0.2.1"));
  CHECK_FALSE(parses("v=spf1 a/33"));
  CHECK_FALSE(parses("v=spf1 a//129"));
  CHECK_FALSE(parses("v=spf1 a:192.0.2.1"));              // numeric top label
  CHECK_FALSE(parses("v=spf1 a:example"));                // no dot before the top label
  CHECK_FALSE(parses("v=spf1 mx:example.com/"));
  CHECK_FALSE(parses("v=spf1 redirect=a.example redirect=b.example"));
  CHECK_FALSE(parses("v=spf1 exp=a.example exp=b.example"));
  CHECK_FALSE(parses("v=spf1 exists:%{x}.example.com"));  // unknown macro letter
  CHECK_FALSE(parses("v=spf1 exists:%{c}.example.com"));  // c only in exp text
  CHECK_FALSE(parses("v=spf1 exists:%{d0}.example.com")); // a zero transformer
  CHECK_FALSE(parses("v=spf1 exists:%{d.example.com"));   // unterminated
  CHECK_FALSE(parses("v=spf1 exists:%d.example.com"));    // '%' without a macro
  CHECK_FALSE(parses("v=spf1 x-bad=%"));                  // unknown modifier, bad macro-string
  CHECK_FALSE(parses("v=spf1 -all\t"));                   // only SP separates terms
  CHECK_FALSE(parses("v=spf1 ?"));
  CHECK_FALSE(parses("spf1 -all"));
}

TEST_CASE("spf: domain-spec may end in a macro") {
  CHECK(parses("v=spf1 exists:%{i}"));
  CHECK(parses("v=spf1 exists:%{ir}.%{v}._spf.%{d2}"));
  CHECK(parses("v=spf1 include:%{d}.%%"));
}

// -- macros -------------------------------------------------------------------

TEST_CASE("spf macros: RFC 7208 7.4 examples") {
  auto c = rfc_context();
  CHECK(expand("%{s}", c) == "strong-bad@email.example.com");
  CHECK(expand("%{o}", c) == "email.example.com");
  CHECK(expand("%{d}", c) == "email.example.com");
  CHECK(expand("%{d4}", c) == "email.example.com");
  CHECK(expand("%{d3}", c) == "email.example.com");
  CHECK(expand("%{d2}", c) == "example.com");
  CHECK(expand("%{d1}", c) == "com");
  CHECK(expand("%{dr}", c) == "com.example.email");
  CHECK(expand("%{d2r}", c) == "example.email");
  CHECK(expand("%{l}", c) == "strong-bad");
  CHECK(expand("%{l-}", c) == "strong.bad");
  CHECK(expand("%{lr}", c) == "strong-bad");
  CHECK(expand("%{lr-}", c) == "bad.strong");
  CHECK(expand("%{l1r-}", c) == "strong");
  CHECK(expand("%{ir}.%{v}._spf.%{d2}", c) == "3.2.0.192.in-addr._spf.example.com");
  CHECK(expand("%{lr-}.lp._spf.%{d2}", c) == "bad.strong.lp._spf.example.com");
  CHECK(expand("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", c) == "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
  CHECK(expand("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", c) == "3.2.0.192.in-addr.strong.lp._spf.example.com");
  CHECK(expand("%{d2}.trusted-domains.example.net", c) == "example.com.trusted-domains.example.net");

  auto c6 = rfc_context("2001:db8::cb01");
  CHECK(expand("%{ir}.%{v}._spf.%{d2}", c6) ==
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

TEST_CASE("spf macros: escapes, upper case, other letters") {
  auto c = rfc_context();
  CHECK(expand("%%%_%-", c) == "% %20");
  CHECK(expand("%{S}", c) == "strong-bad%40email.example.com");
  CHECK(expand("%{h}", c) == "mx.example.org");
  CHECK(expand("%{p}", c) == "unknown");
  CHECK(expand("%{i}", c) == "192.0.2.3");
  c.timestamp = 1234;
  CHECK(expand("%{c} %{r} %{t}", c, true) == "192.0.2.3 unknown 1234");
  CHECK(expand("%{c}", rfc_context("2001:db8::cb01"), true) == "2001:db8::cb01");
  CHECK(expand("%{d999}", c) == "email.example.com");
  CHECK(expand("%{l+-}", c) == "strong.bad");
  CHECK_FALSE(spf::expand("%{c}", c, false).ok());
  CHECK(spf::uses_macro("%{P}.example.com", 'p'));
  CHECK_FALSE(spf::uses_macro("%%{p}.example.com", 'p'));
}

TEST_CASE("spf macros: long expansions lose labels from the left") {
  auto c = rfc_context();
  c.local_part = std::string(60, 'a') + "." + std::string(60, 'b') + "." + std::string(60, 'c') + "." +
                 std::string(60, 'd');
  std::string out = expand("%{l}.%{d}", c);
  CHECK(out.size() <= 253);
  CHECK(out == std::string(60, 'b') + "." + std::string(60, 'c') + "." + std::string(60, 'd') +
                   ".email.example.com");
}

// RFC 7208 test suite, macro-mania-in-domain: %_ is a space, and the name
// it makes is asked as it is (the DNS carries any octet in a label).
TEST_CASE("spf macros: a name with spaces is still a name to ask") {
  auto c = rfc_context();
  std::string name = expand("macro%%percent%_%_space%-url-space.example.com", c);
  CHECK(name == "macro%percent  space%20url-space.example.com");
  CHECK(dns::is_query_name(name));
  CHECK(dns::presentation_name(name) == "macro%percent\\032\\032space%20url-space.example.com");
  // A local part with a backslash (quoted in SMTP) must reach the resolver
  // as a backslash, not as the start of an escape.
  c.local_part = "a\\b";
  std::string with_backslash = expand("%{l}._l.example.com", c);
  CHECK(with_backslash == "a\\b._l.example.com");
  CHECK(dns::is_query_name(with_backslash));
  CHECK(dns::presentation_name(with_backslash) == "a\\\\b._l.example.com");
}

namespace {

// The wire form of a raw dotted name, built by hand for the round trip.
std::string wire_of(const std::vector<std::string>& labels) {
  std::string w;
  for (const auto& l : labels) {
    w += static_cast<char>(l.size());
    w += l;
  }
  w += '\0';
  return w;
}

}  // namespace

TEST_CASE("query names: any octet in a label, the wire limits, and the escaped form") {
  CHECK(dns::is_query_name("a b.example.com"));
  CHECK(dns::is_query_name(std::string("nul\0byte.example", 16)));
  CHECK(dns::is_query_name("tab\there.\x7f\xff.example"));
  CHECK(dns::is_query_name(std::string(63, ' ') + ".example"));
  CHECK_FALSE(dns::is_query_name(std::string(64, 'a') + ".example"));
  std::string longest = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
                        std::string(61, 'd');
  REQUIRE(longest.size() == 253);
  CHECK(dns::is_query_name(longest));
  CHECK_FALSE(dns::is_query_name(longest + "d"));
  CHECK_FALSE(dns::is_query_name(""));
  CHECK_FALSE(dns::is_query_name(".example"));
  CHECK_FALSE(dns::is_query_name("a..example"));
  CHECK_FALSE(dns::is_query_name("example."));

  // The escaped form is what our own decoder makes of the same octets on the
  // wire (it folds case, so these are lower case), and it has a backslash
  // only where an escape starts.
  const std::vector<std::vector<std::string>> names = {
      {"macro%percent  space%20url-space", "example", "com"},
      {"a\\b", "example"},
      {std::string("nul\0", 4), "tab\t", "del\x7f", "high\xe9", "example"},
      {"semi;colon(paren)\"quote\"@at$", "example"},
  };
  for (const auto& labels : names) {
    std::string raw;
    for (const auto& l : labels) raw += (raw.empty() ? "" : ".") + l;
    CAPTURE(dns::presentation_name(raw));
    REQUIRE(dns::is_query_name(raw));
    auto decoded = dns::parse_name(wire_of(labels));
    REQUIRE(decoded.ok());
    CHECK(*decoded == dns::presentation_name(raw));
  }
  CHECK(dns::presentation_name("plain-name_1.example") == "plain-name_1.example");
}

// -- CIDR ------------------------------------------------------------------

TEST_CASE("spf: CIDR matching") {
  CHECK(spf::cidr_match(ip("192.0.2.0"), 24, ip("192.0.2.200")));
  CHECK_FALSE(spf::cidr_match(ip("192.0.2.0"), 24, ip("192.0.3.1")));
  CHECK(spf::cidr_match(ip("192.0.2.128"), 25, ip("192.0.2.255")));
  CHECK_FALSE(spf::cidr_match(ip("192.0.2.128"), 25, ip("192.0.2.127")));
  CHECK(spf::cidr_match(ip("10.0.0.0"), 0, ip("203.0.113.9")));
  CHECK(spf::cidr_match(ip("192.0.2.7"), 32, ip("192.0.2.7")));
  CHECK_FALSE(spf::cidr_match(ip("192.0.2.7"), 32, ip("192.0.2.8")));
  CHECK(spf::cidr_match(ip("2001:db8::"), 32, ip("2001:db8:ffff::1")));
  CHECK_FALSE(spf::cidr_match(ip("2001:db8::"), 33, ip("2001:db8:ffff::1")));
  CHECK(spf::cidr_match(ip("2001:db8::1"), 128, ip("2001:db8::1")));
  // Never across families, not even ::/0 against IPv4.
  CHECK_FALSE(spf::cidr_match(ip("::"), 0, ip("192.0.2.1")));
  CHECK_FALSE(spf::cidr_match(ip("0.0.0.0"), 0, ip("2001:db8::1")));
}

TEST_CASE("spf: IPv4-mapped clients are IPv4") {
  IpAddress mapped;
  mapped.v6 = true;
  mapped.bytes = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 10};
  IpAddress u = dns::unmap_v4(mapped);
  CHECK_FALSE(u.v6);
  CHECK(u.to_string() == "192.0.2.10");
  CHECK(spf::cidr_match(ip("192.0.2.0"), 24, u));
  CHECK(dns::unmap_v4(ip("2001:db8::1")).v6);
}

TEST_CASE("spf: initial domain check") {
  CHECK(spf::is_valid_domain("example.com"));
  CHECK(spf::is_valid_domain("example.com."));
  CHECK_FALSE(spf::is_valid_domain("localhost"));
  CHECK_FALSE(spf::is_valid_domain(""));
  CHECK_FALSE(spf::is_valid_domain("a..example.com"));
  CHECK_FALSE(spf::is_valid_domain(std::string(64, 'a') + ".com"));
  // Only the DNS limits count: a space is an octet like any other (RFC 7208
  // test suite, macro-mania-in-domain).
  CHECK(spf::is_valid_domain("exa mple.com"));
  CHECK_FALSE(spf::is_valid_domain("exa mple"));
}

// -- DMARC -------------------------------------------------------------------

TEST_CASE("dmarc: record recognition and parsing") {
  CHECK(dmarc::is_dmarc_record("v=DMARC1; p=none"));
  CHECK(dmarc::is_dmarc_record("v = DMARC1 ;p=none"));
  CHECK(dmarc::is_dmarc_record("v=DMARC1"));
  CHECK_FALSE(dmarc::is_dmarc_record("v=dmarc1; p=none"));
  CHECK_FALSE(dmarc::is_dmarc_record("p=none; v=DMARC1"));
  CHECK_FALSE(dmarc::is_dmarc_record("v=DMARC10; p=none"));

  auto r = dmarc::parse_record("v=DMARC1; p=Reject; sp=quarantine; pct=30; adkim=s; aspf=r; rua=mailto:a@b.example");
  REQUIRE(r.ok());
  CHECK(r->p == DmarcPolicy::kReject);
  REQUIRE(r->sp);
  CHECK(*r->sp == DmarcPolicy::kQuarantine);
  CHECK(r->pct == 30);
  CHECK(r->adkim_strict);
  CHECK_FALSE(r->aspf_strict);
  CHECK_FALSE(r->p_defaulted);

  auto d = dmarc::parse_record("v=DMARC1;p=none;");
  REQUIRE(d.ok());
  CHECK_FALSE(d->sp);
  CHECK(d->pct == 100);
  CHECK_FALSE(d->adkim_strict);
}

TEST_CASE("dmarc: invalid values") {
  // Bad pct/adkim/aspf fall back to their defaults; unknown tags and junk are ignored.
  auto r = dmarc::parse_record("v=DMARC1; p=quarantine; pct=200; adkim=x; aspf=; foo=bar; junk");
  REQUIRE(r.ok());
  CHECK(r->pct == 100);
  CHECK_FALSE(r->adkim_strict);
  CHECK_FALSE(r->aspf_strict);
  // Without a usable p= the record gives no policy...
  CHECK_FALSE(dmarc::parse_record("v=DMARC1").ok());
  CHECK_FALSE(dmarc::parse_record("v=DMARC1; p=bogus").ok());
  CHECK_FALSE(dmarc::parse_record("v=DMARC1; p=reject; sp=bogus").ok());
  CHECK_FALSE(dmarc::parse_record("v=DMARC1; p=bogus; rua=not a uri").ok());
  // ...unless rua= names a report address: then it stands as p=none.
  auto rua = dmarc::parse_record("v=DMARC1; p=bogus; rua=mailto:r@example.com");
  REQUIRE(rua.ok());
  CHECK(rua->p == DmarcPolicy::kNone);
  CHECK(rua->p_defaulted);
}

TEST_CASE("dmarc: organisational domain") {
  CHECK(organisational_domain("mail.example.com") == "example.com");
  CHECK(organisational_domain("a.b.example.co.uk") == "example.co.uk");
  CHECK(organisational_domain("Example.COM.") == "example.com");
  CHECK(organisational_domain("co.uk") == "co.uk");
  CHECK(organisational_domain("news.shop.example.test") == "example.test");
  CHECK(organisational_domain("foo.bar.github.io") == "bar.github.io");
}

TEST_CASE("dmarc: alignment") {
  CHECK(dmarc::aligned("example.com", "example.com", true));
  CHECK(dmarc::aligned("Example.com.", "example.COM", true));
  CHECK_FALSE(dmarc::aligned("mail.example.com", "example.com", true));
  CHECK(dmarc::aligned("mail.example.com", "example.com", false));
  CHECK(dmarc::aligned("example.com", "news.example.com", false));
  CHECK(dmarc::aligned("a.example.co.uk", "b.example.co.uk", false));
  CHECK_FALSE(dmarc::aligned("example.co.uk", "other.co.uk", false));
  CHECK_FALSE(dmarc::aligned("", "example.com", false));
  CHECK_FALSE(dmarc::aligned("evil-example.com", "example.com", false));
}

TEST_CASE("dmarc: verdicts, sp= and pct=") {
  dmarc::Record rec;
  rec.p = DmarcPolicy::kReject;
  rec.sp = DmarcPolicy::kQuarantine;
  DmarcRequest req;
  req.from_domain = "news.example.com";

  SUBCASE("spf pass aligned") {
    req.spf = {SpfResult::kPass, "bounce.example.com", ""};
    auto o = dmarc::evaluate(rec, req, "news.example.com", "example.com", true);
    CHECK(o.result == DmarcResult::kPass);
    CHECK(o.policy == DmarcPolicy::kNone);
  }
  SUBCASE("spf pass strict unaligned") {
    rec.aspf_strict = true;
    req.spf = {SpfResult::kPass, "bounce.example.com", ""};
    auto o = dmarc::evaluate(rec, req, "news.example.com", "example.com", true);
    CHECK(o.result == DmarcResult::kFail);
    CHECK(o.policy == DmarcPolicy::kQuarantine);  // sp= for a subdomain found via the org record
  }
  SUBCASE("softfail does not count") {
    req.spf = {SpfResult::kSoftFail, "example.com", ""};
    auto o = dmarc::evaluate(rec, req, "example.com", "example.com", false);
    CHECK(o.result == DmarcResult::kFail);
    CHECK(o.policy == DmarcPolicy::kReject);
  }
  SUBCASE("dkim pass aligned, failing dkim ignored") {
    req.dkim = {{"example.com", false}, {"other.org", true}, {"mail.example.com", true}};
    CHECK(dmarc::evaluate(rec, req, "news.example.com", "example.com", true).result == DmarcResult::kPass);
    rec.adkim_strict = true;
    CHECK(dmarc::evaluate(rec, req, "news.example.com", "example.com", true).result == DmarcResult::kFail);
  }
  SUBCASE("p= applies to a subdomain's own record") {
    auto o = dmarc::evaluate(rec, req, "news.example.com", "example.com", false);
    CHECK(o.policy == DmarcPolicy::kReject);
  }
  SUBCASE("without sp= a subdomain gets p=") {
    rec.sp.reset();
    CHECK(dmarc::evaluate(rec, req, "news.example.com", "example.com", true).policy == DmarcPolicy::kReject);
  }
  SUBCASE("outside the pct sample the next lower policy applies") {
    rec.sp.reset();
    rec.pct = 0;
    CHECK(dmarc::evaluate(rec, req, "example.com", "example.com", false).policy == DmarcPolicy::kQuarantine);
    rec.p = DmarcPolicy::kQuarantine;
    CHECK(dmarc::evaluate(rec, req, "example.com", "example.com", false).policy == DmarcPolicy::kNone);
  }
}

TEST_CASE("dmarc: pct sampling is deterministic and roughly proportional") {
  CHECK(dmarc::in_sample("anything", 100));
  CHECK_FALSE(dmarc::in_sample("anything", 0));
  CHECK(dmarc::in_sample("", 1));
  int in = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string key = "<" + std::to_string(i) + "@example.com>";
    bool a = dmarc::in_sample(key, 30);
    CHECK(a == dmarc::in_sample(key, 30));
    in += a ? 1 : 0;
  }
  CHECK(in > 200);
  CHECK(in < 400);
}

// The engine used to build its DMARC request without a sample key, and an
// empty key is always in the sample: 20 of 20 failing messages got reject
// under pct=50. With the message id as the key about pct% are sampled, the
// same id always the same way.
TEST_CASE("dmarc: pct= samples failing messages by message id") {
  dmarc::Record rec;
  rec.p = DmarcPolicy::kReject;
  DmarcRequest req;
  req.from_domain = "example.com";
  req.spf = {SpfResult::kFail, "example.com", ""};
  auto policy_for = [&](const std::string& id, unsigned pct) {
    rec.pct = pct;
    req.sample_key = id;
    auto o = dmarc::evaluate(rec, req, "example.com", "example.com", false);
    REQUIRE(o.result == DmarcResult::kFail);
    return o.policy;
  };
  int rejected = 0, all = 0, none = 0;
  for (int i = 0; i < 200; ++i) {
    std::string id = "<" + std::to_string(1000 + i) + ".report@mail.example.com>";
    DmarcPolicy p = policy_for(id, 50);
    CHECK(p == policy_for(id, 50));
    CHECK((p == DmarcPolicy::kReject || p == DmarcPolicy::kQuarantine));
    rejected += p == DmarcPolicy::kReject ? 1 : 0;
    all += policy_for(id, 100) == DmarcPolicy::kReject ? 1 : 0;
    none += policy_for(id, 0) == DmarcPolicy::kReject ? 1 : 0;
  }
  CHECK(rejected >= 70);
  CHECK(rejected <= 130);
  CHECK(all == 200);
  CHECK(none == 0);
}

TEST_CASE("dmarc: discovery at one name") {
  using Kind = dmarc::Discovery::Kind;
  CHECK(dmarc::discover({}).kind == Kind::kNoRecord);
  CHECK(dmarc::discover({"v=spf1 -all", "google-site-verification=x"}).kind == Kind::kNoRecord);
  auto one = dmarc::discover({"v=spf1 -all", "v=DMARC1; p=quarantine; pct=20"});
  REQUIRE(one.kind == Kind::kRecord);
  CHECK(one.record.p == DmarcPolicy::kQuarantine);
  CHECK(one.record.pct == 20);
  // RFC 7489 6.6.3 step 5: two records mean no policy at all, not a broken one.
  CHECK(dmarc::discover({"v=DMARC1; p=reject", "v=DMARC1; p=none"}).kind == Kind::kSeveral);
  CHECK(dmarc::discover({"v=DMARC1; p=reject", "other", "v=DMARC1; p=reject"}).kind == Kind::kSeveral);
  auto bad = dmarc::discover({"v=DMARC1; p=bogus"});
  CHECK(bad.kind == Kind::kUnusable);
  CHECK(bad.error == "no valid p= tag");
}

// RFC 5322 allows one From. With two, DMARC reads the first while a DKIM
// signature binds the last, so a prepended From passed as aligned.
TEST_CASE("dmarc: two From fields fail under reject whatever the signatures say") {
  DmarcRequest req;
  req.from_domain = "example.com";
  req.spf = {SpfResult::kPass, "example.com", ""};
  req.dkim = {{"example.com", true}};
  req.from_fields = 2;
  auto r = offline_resolver();
  std::optional<DmarcOutcome> out;
  check_dmarc(*r, req, [&](DmarcOutcome o) { out = o; });
  CHECK_FALSE(out);  // answered from the loop, without a lookup
  r->process();
  REQUIRE(out);
  CHECK(out->result == DmarcResult::kFail);
  CHECK(out->policy == DmarcPolicy::kReject);
  CHECK(out->from_domain == "example.com");
  CHECK(out->detail.find("2 From fields") != std::string::npos);
  CHECK(r->pending() == 0);

  // One From field with the same results passes as before.
  dmarc::Record rec;
  rec.p = DmarcPolicy::kReject;
  req.from_fields = 1;
  CHECK(dmarc::evaluate(rec, req, "example.com", "example.com", false).result == DmarcResult::kPass);
}

// -- DNSBL and reverse names --------------------------------------------------

TEST_CASE("dnsbl: query names") {
  CHECK(dnsbl::ip_query(ip("192.0.2.99"), "zen.example") == "99.2.0.192.zen.example");
  CHECK(dnsbl::ip_query(ip("::ffff:127.0.0.2"), "bl.example") == "2.0.0.127.bl.example");
  CHECK(dnsbl::ip_query(ip("2001:db8:1:2:3:4:567:89ab"), "bl.example") ==
        "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.example");
  CHECK(dns::reverse_name(ip("192.0.2.1")) == "1.2.0.192.in-addr.arpa");
  CHECK(dns::reverse_name(ip("2001:db8::1")) ==
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  CHECK(dnsbl::normalise_zone(" .Zen.Example.org. ") == "zen.example.org");
  CHECK(dnsbl::normalise_zone("...") == "");
}

TEST_CASE("dnsbl: listing answers") {
  CHECK(dnsbl::is_listing(ip("127.0.0.2")));
  CHECK(dnsbl::is_listing(ip("127.0.0.10")));
  CHECK(dnsbl::is_listing(ip("127.1.2.3")));
  CHECK_FALSE(dnsbl::is_listing(ip("127.0.0.1")));
  CHECK_FALSE(dnsbl::is_listing(ip("127.255.255.254")));
  CHECK_FALSE(dnsbl::is_listing(ip("127.255.255.252")));
  CHECK_FALSE(dnsbl::is_listing(ip("127.0.1.255")));
  CHECK_FALSE(dnsbl::is_listing(ip("192.0.2.1")));
  CHECK_FALSE(dnsbl::is_listing(ip("::1")));
}

TEST_CASE("dnsbl: URL hosts reduced, deduplicated and capped") {
  auto keys = dnsbl::host_keys({"www.Example.com", "click.example.com.", "a.b.example.co.uk", "192.0.2.1",
                                "[2001:db8::1]", "localhost", "bad host.example.net", "example.com"});
  CHECK(keys == std::vector<std::string>{"example.com", "example.co.uk"});
  std::vector<std::string> many;
  for (int i = 0; i < 50; ++i) many.push_back("www.site" + std::to_string(i) + ".example");
  CHECK(dnsbl::host_keys(many).size() == dnsbl::kMaxHosts);
  CHECK(dnsbl::host_keys(many, 3).size() == 3);
}

// -- HELO forms -----------------------------------------------------------

TEST_CASE("helo: forms") {
  auto lit = helo::classify("[192.0.2.1]");
  CHECK(lit.literal);
  REQUIRE(lit.address);
  CHECK(lit.address->to_string() == "192.0.2.1");
  CHECK(helo::classify("[IPv6:2001:db8::1]").literal);
  CHECK(helo::classify("192.0.2.1").literal);
  auto name = helo::classify("Mail.Example.COM.");
  CHECK(name.fqdn);
  CHECK(name.name == "mail.example.com");
  CHECK_FALSE(helo::classify("localhost").fqdn);
  CHECK_FALSE(helo::classify("mail_server.example.com").fqdn);
  CHECK_FALSE(helo::classify("-mail.example.com").fqdn);
  CHECK_FALSE(helo::classify("1.2.3.4.5").fqdn);
  CHECK_FALSE(helo::classify("[not an address]").literal);
  CHECK_FALSE(helo::classify("").fqdn);
}

// -- the callback contract, without a server -----------------------------

TEST_CASE("async resolver: post runs from process(), never inside post()") {
  auto r = offline_resolver();
  int runs = 0;
  r->post([&] { ++runs; });
  CHECK(runs == 0);
  CHECK(r->pending() == 1);
  CHECK(readable(r->fd()));
  r->process();
  CHECK(runs == 1);
  CHECK(r->pending() == 0);
  r->process();
  CHECK(runs == 1);
}

TEST_CASE("async resolver: a name libunbound refuses fails later, once") {
  auto r = offline_resolver();
  int calls = 0;
  dns::LookupStatus status = dns::LookupStatus::kOk;
  // A label over 63 octets: libunbound's worker refuses it without sending.
  std::string bad = std::string(70, 'a') + ".example";
  r->txt(bad, [&](dns::Answer<dns::TxtRecord> a) {
    ++calls;
    status = a.status;
  });
  CHECK(calls == 0);
  CHECK(r->pending() == 1);
  for (int i = 0; i < 100 && calls == 0; ++i) {
    pollfd p{r->fd(), POLLIN, 0};
    if (poll(&p, 1, 50) > 0) r->process();
  }
  CHECK(calls == 1);
  CHECK(status == dns::LookupStatus::kError);
  r->process();
  r->expire(INT64_MAX / 2);
  CHECK(calls == 1);
  CHECK(r->pending() == 0);
}

TEST_CASE("async resolver: expire() times out what is still open") {
  auto r = offline_resolver();
  std::optional<dns::LookupStatus> status;
  r->txt(std::string(70, 'b') + ".example", [&](dns::Answer<dns::TxtRecord> a) { status = a.status; });
  r->expire(0);  // long before the lookup started: nothing is late
  CHECK_FALSE(status);
  r->expire(INT64_MAX / 2);
  REQUIRE(status);
  CHECK(*status == dns::LookupStatus::kTimeout);
  CHECK(r->pending() == 0);
}

TEST_CASE("async resolver: callbacks may start lookups; cancel_all and the destructor finish them") {
  auto r = offline_resolver();
  std::vector<std::string> order;
  std::string bad = std::string(70, 'a') + ".example";
  r->post([&] {
    order.push_back("post");
    r->a(bad, [&](dns::Answer<IpAddress>) { order.push_back("nested"); });
  });
  r->process();
  CHECK(order == std::vector<std::string>{"post"});
  CHECK(r->pending() == 1);
  r->cancel_all();
  CHECK(order == std::vector<std::string>{"post", "nested"});
  CHECK(r->pending() == 0);

  int late = 0;
  r->addresses(bad, [&](dns::Answer<IpAddress> a) {
    ++late;
    CHECK(a.status == dns::LookupStatus::kError);
  });
  CHECK(r->pending() == 1);
  r.reset();
  CHECK(late == 1);
}

TEST_CASE("checks answer invalid input from the loop, not from the call") {
  auto r = offline_resolver();
  std::optional<SpfOutcome> spf;
  check_spf(*r, {ip("192.0.2.1"), "", "[192.0.2.1]"}, [&](SpfOutcome o) { spf = o; });
  std::optional<DmarcOutcome> dm;
  check_dmarc(*r, DmarcRequest{"", {}, {}, {}}, [&](DmarcOutcome o) { dm = o; });
  std::optional<std::vector<DnsblHit>> bl;
  check_dnsbl_ip(*r, ip("192.0.2.1"), {}, [&](std::vector<DnsblHit> h) { bl = h; });
  std::optional<std::vector<DnsblHit>> uri;
  check_dnsbl_hosts(*r, {"192.0.2.1"}, {"uribl.example"}, [&](std::vector<DnsblHit> h) { uri = h; });
  CHECK_FALSE(spf);
  CHECK_FALSE(dm);
  CHECK_FALSE(bl);
  CHECK_FALSE(uri);
  r->process();
  REQUIRE(spf);
  CHECK(spf->result == SpfResult::kNone);
  REQUIRE(dm);
  CHECK(dm->result == DmarcResult::kNone);
  REQUIRE(bl);
  CHECK(bl->empty());
  REQUIRE(uri);
  CHECK(uri->empty());
  CHECK(r->pending() == 0);
}

TEST_CASE("result names") {
  CHECK(to_string(SpfResult::kSoftFail) == "softfail");
  CHECK(to_string(SpfResult::kTempError) == "temperror");
  CHECK(to_string(SpfResult::kPermError) == "permerror");
  CHECK(to_string(DmarcResult::kPass) == "pass");
  CHECK(to_string(DmarcPolicy::kQuarantine) == "quarantine");
}
