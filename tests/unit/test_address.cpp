// MAIL FROM / RCPT TO path and parameter parsing, including relay tricks.
#include <doctest.h>

#include <string>

#include "mxguard/smtp/address.hpp"

using namespace mxguard::smtp;

namespace {
std::string kind_name(PathErrorKind k) {
  switch (k) {
    case PathErrorKind::kSyntax: return "syntax";
    case PathErrorKind::kRelayTrick: return "relay";
    case PathErrorKind::kNeedsUtf8: return "utf8";
    case PathErrorKind::kTooLong: return "toolong";
    case PathErrorKind::kBadParameter: return "param";
  }
  return "?";
}

std::string rcpt_result(const char* args, bool utf8 = false) {
  auto r = parse_rcpt_to(args, utf8);
  if (auto* ok = std::get_if<RcptTo>(&r)) return "ok:" + ok->recipient.str();
  return kind_name(std::get<PathError>(r).kind);
}
std::string mail_result(const char* args) {
  auto r = parse_mail_from(args);
  if (auto* ok = std::get_if<MailFrom>(&r)) {
    std::string s = "ok:" + ok->sender.str();
    if (ok->size) s += " size=" + std::to_string(*ok->size);
    if (ok->body_8bit) s += " 8bit";
    if (ok->smtputf8) s += " utf8";
    return s;
  }
  return kind_name(std::get<PathError>(r).kind);
}
}  // namespace

TEST_CASE("rcpt: valid forward paths") {
  CHECK(rcpt_result("TO:<user@example.com>") == "ok:user@example.com");
  CHECK(rcpt_result("to:<User.Name+tag@Example.COM>") == "ok:User.Name+tag@example.com");
  CHECK(rcpt_result("TO: <a@b.example>") == "ok:a@b.example");
  CHECK(rcpt_result("TO:user@example.com") == "ok:user@example.com");
  CHECK(rcpt_result("TO:<\"john doe\"@example.com>") == "ok:\"john doe\"@example.com");
  CHECK(rcpt_result("TO:<Postmaster>") == "ok:Postmaster");
  CHECK(rcpt_result("TO:<a@[192.0.2.1]>") == "ok:a@[192.0.2.1]");
  CHECK(rcpt_result("TO:<a@[IPv6:2001:db8::1]>") == "ok:a@[ipv6:2001:db8::1]");
}

TEST_CASE("rcpt: relay tricks are refused") {
  CHECK(rcpt_result("TO:<user%other.example@example.com>") == "relay");
  CHECK(rcpt_result("TO:<other.example!user@example.com>") == "relay");
  CHECK(rcpt_result("TO:<@relay.example:user@example.com>") == "relay");
  CHECK(rcpt_result("TO:<@a.example,@b.example:user@example.com>") == "relay");
  CHECK(rcpt_result("TO:<\"user@other.example\"@example.com>") == "relay");
  CHECK(rcpt_result("TO:<\"user%other\"@example.com>") == "relay");
  CHECK(rcpt_result("TO:<user@other.example@example.com>") == "relay");
}

TEST_CASE("rcpt: syntax errors") {
  CHECK(rcpt_result("TO:<>") == "syntax");
  CHECK(rcpt_result("TO:<user>") == "syntax");
  CHECK(rcpt_result("TO:<user@>") == "syntax");
  CHECK(rcpt_result("TO:<@example.com>") == "relay");  // looks like a source route
  CHECK(rcpt_result("TO:<.user@example.com>") == "syntax");
  CHECK(rcpt_result("TO:<us..er@example.com>") == "syntax");
  CHECK(rcpt_result("TO:<user.@example.com>") == "syntax");
  CHECK(rcpt_result("TO:<user@-bad.example>") == "syntax");
  CHECK(rcpt_result("TO:<user@bad-.example>") == "syntax");
  CHECK(rcpt_result("TO:<user@exa mple.com>") == "syntax");
  CHECK(rcpt_result("TO:<user@example..com>") == "syntax");
  CHECK(rcpt_result("TO:<user@example.com.>") == "syntax");
  CHECK(rcpt_result("TO:<user@example.com") == "syntax");
  CHECK(rcpt_result("TO:<\"unterminated@example.com>") == "syntax");
  CHECK(rcpt_result("TO:<us(er@example.com>") == "syntax");
  CHECK(rcpt_result("TO:<a@[999.1.1.1]>") == "syntax");
  CHECK(rcpt_result("FROM:<a@b.c>") == "syntax");
  CHECK(rcpt_result("TO:<a@b.c>x") == "syntax");
  CHECK(rcpt_result("TO:<a@b.c> NOTIFY=NEVER") == "param");
  std::string long_local = "TO:<" + std::string(65, 'a') + "@example.com>";
  CHECK(rcpt_result(long_local.c_str()) == "toolong");
  std::string long_domain = "TO:<a@" + std::string(250, 'b') + ".com>";
  CHECK(rcpt_result(long_domain.c_str()) == "toolong");
}

TEST_CASE("rcpt: non-ASCII needs SMTPUTF8 and must be valid UTF-8") {
  CHECK(rcpt_result("TO:<j\xc3\xb6rg@example.com>") == "utf8");
  CHECK(rcpt_result("TO:<j\xc3\xb6rg@example.com>", true) == "ok:j\xc3\xb6rg@example.com");
  CHECK(rcpt_result("TO:<user@b\xc3\xbc"
                    "cher.example>",
                    true) == "ok:user@b\xc3\xbc"
                             "cher.example");
  CHECK(rcpt_result("TO:<j\xc3rg@example.com>", true) == "syntax");
  CHECK(rcpt_result("TO:<j\xff@example.com>", true) == "syntax");
}

TEST_CASE("mail: reverse paths and parameters") {
  CHECK(mail_result("FROM:<>") == "ok:");
  CHECK(mail_result("FROM:<a@b.example>") == "ok:a@b.example");
  CHECK(mail_result("from:<a@b.example> SIZE=1000") == "ok:a@b.example size=1000");
  CHECK(mail_result("FROM:<a@b.example> BODY=8BITMIME") == "ok:a@b.example 8bit");
  CHECK(mail_result("FROM:<a@b.example> BODY=7BIT") == "ok:a@b.example");
  CHECK(mail_result("FROM:<a@b.example> SMTPUTF8") == "ok:a@b.example utf8");
  CHECK(mail_result("FROM:<@route.example:a@b.example>") == "ok:a@b.example");  // ignored (RFC 5321 4.1.1.2)
  CHECK(mail_result("FROM:<a%b@c.example>") == "ok:a%b@c.example");           // only RCPT relays
  CHECK(mail_result("FROM:<j\xc3\xb6rg@b.example>") == "utf8");
  CHECK(mail_result("FROM:<j\xc3\xb6rg@b.example> SMTPUTF8") == "ok:j\xc3\xb6rg@b.example utf8");
  CHECK(mail_result("FROM:<a@b.example> SIZE=abc") == "param");
  CHECK(mail_result("FROM:<a@b.example> SIZE=") == "param");
  CHECK(mail_result("FROM:<a@b.example> SIZE=1 SIZE=2") == "param");
  CHECK(mail_result("FROM:<a@b.example> SIZE=99999999999999999999999") == "param");
  CHECK(mail_result("FROM:<a@b.example> BODY=BINARYMIME") == "param");
  CHECK(mail_result("FROM:<a@b.example> AUTH=<>") == "param");
  CHECK(mail_result("FROM:<a@b.example> SMTPUTF8=yes") == "param");
  CHECK(mail_result("FROM <a@b.example>") == "syntax");
  CHECK(mail_result("FROM:") == "syntax");
  CHECK(mail_result("TO:<a@b.example>") == "syntax");
}

TEST_CASE("valid_domain") {
  CHECK(valid_domain("example.com", false));
  CHECK(valid_domain("a-b.example", false));
  CHECK(valid_domain("xn--bcher-kva.example", false));
  CHECK(valid_domain("localhost", false));
  CHECK_FALSE(valid_domain("", false));
  CHECK_FALSE(valid_domain("-a.example", false));
  CHECK_FALSE(valid_domain("a..example", false));
  CHECK_FALSE(valid_domain("a_b.example", false));
  CHECK_FALSE(valid_domain(std::string(64, 'a') + ".example", false));
  CHECK_FALSE(valid_domain("b\xc3\xbc"
                           "cher.example",
                           false));
  CHECK(valid_domain("b\xc3\xbc"
                     "cher.example",
                     true));
}
