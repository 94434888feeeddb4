// SMTP client towards the backends: scripted dialogues (the server says this,
// the client must say exactly that), the reply parser, dot-stuffing and DSNs.
#include <doctest.h>

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "mxguard/delivery/client.hpp"
#include "mxguard/delivery/dsn.hpp"

using namespace mxguard;
using namespace mxguard::delivery;

namespace {

constexpr std::string_view kMessage = "Subject: hi\r\n\r\nhello\r\n.dot line\r\n";
constexpr std::string_view kStuffed = "Subject: hi\r\n\r\nhello\r\n..dot line\r\n.\r\n";

const char* const kEhloFull =
    "250-backend.example\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 10240000\r\n"
    "250-8BITMIME\r\n"
    "250-SMTPUTF8\r\n"
    "250 ENHANCEDSTATUSCODES";
const char* const kEhloBasic = "250-backend.example\r\n250 ENHANCEDSTATUSCODES";

ClientJob make_job(std::vector<std::string> rcpts = {"bob@example.com"}) {
  ClientJob j;
  j.helo = "mx1.mxguard.test";
  j.sender = "alice@sender.example";
  j.recipients = std::move(rcpts);
  j.message = kMessage;
  j.size = kMessage.size();
  j.tls = TlsPolicy::kNone;
  return j;
}

// Lines joined with CRLF, each one terminated.
std::string crlf(std::initializer_list<std::string_view> lines) {
  std::string s;
  for (std::string_view l : lines) {
    s.append(l);
    s.append("\r\n");
  }
  return s;
}

// Plays the engine: feeds what the server says, collects what the client says.
struct Dialogue {
  ClientSession s;
  explicit Dialogue(ClientJob job) : s(std::move(job)) {}
  void server(std::string_view text) { s.receive(std::string(text) + "\r\n"); }
  // Everything the client said since the last call (engine takes and clears).
  std::string client() {
    std::string said = std::move(s.output());
    s.output().clear();
    return said;
  }
  const RcptResult& result(size_t i) const { return s.results().at(i); }
};

// Greeting and EHLO, leaving the session where MAIL is about to go out.
void handshake(Dialogue& d, const char* ehlo = kEhloFull) {
  d.server("220 backend.example ESMTP");
  CHECK(d.client() == crlf({"EHLO mx1.mxguard.test"}));
  d.server(ehlo);
}

bool contains(std::string_view hay, std::string_view needle) { return hay.find(needle) != std::string_view::npos; }

}  // namespace

// --- ReplyParser ---------------------------------------------------------------

TEST_CASE("reply parser: single, multi-line and bare replies") {
  ReplyParser p;
  std::vector<Reply> out;
  REQUIRE(p.feed("250 2.1.5 Ok\r\n250-first\r\n250-2.0.0 second\r\n250 third\r\n354\r\n", out).ok());
  REQUIRE(out.size() == 3);
  CHECK(out[0].code == 250);
  CHECK(out[0].enhanced == "2.1.5");
  CHECK(out[0].lines == std::vector<std::string>{"2.1.5 Ok"});
  CHECK(out[0].text() == "2.1.5 Ok");
  CHECK(out[1].enhanced == "");  // only the first line counts
  CHECK(out[1].lines.size() == 3);
  CHECK(out[1].text() == "first 2.0.0 second third");
  CHECK(out[2].code == 354);
  CHECK(out[2].lines == std::vector<std::string>{""});
}

TEST_CASE("reply parser: repeated enhanced codes appear once in text()") {
  ReplyParser p;
  std::vector<Reply> out;
  REQUIRE(p.feed("550-5.1.1 The account\r\n550-5.1.1 does not\r\n550 5.1.1 exist\r\n", out).ok());
  REQUIRE(out.size() == 1);
  CHECK(out[0].enhanced == "5.1.1");
  CHECK(out[0].text() == "5.1.1 The account does not exist");
}

TEST_CASE("reply parser: enhanced code must match the reply class and syntax") {
  ReplyParser p;
  std::vector<Reply> out;
  REQUIRE(p.feed("250 5.1.1 odd\r\n550 5.1.1234 x\r\n451 4.3.0\r\n250 2.0.0x\r\n", out).ok());
  REQUIRE(out.size() == 4);
  CHECK(out[0].enhanced == "");
  CHECK(out[1].enhanced == "");
  CHECK(out[2].enhanced == "4.3.0");
  CHECK(out[3].enhanced == "");
}

TEST_CASE("reply parser: LF-only line endings are accepted") {
  ReplyParser p;
  std::vector<Reply> out;
  REQUIRE(p.feed("220-a\n220 b\n", out).ok());
  REQUIRE(out.size() == 1);
  CHECK(out[0].lines == std::vector<std::string>{"a", "b"});
}

TEST_CASE("reply parser: split at every byte position gives the same replies") {
  const std::string input =
      std::string(kEhloFull) + "\r\n550-5.1.1 no\r\n550 5.1.1 such user\r\n354\r\n221 2.0.0 Bye\r\n";
  ReplyParser whole;
  std::vector<Reply> expected;
  REQUIRE(whole.feed(input, expected).ok());
  REQUIRE(expected.size() == 4);
  for (size_t a = 0; a <= input.size(); ++a) {
    for (size_t b = a; b <= input.size(); b += 7) {
      ReplyParser p;
      std::vector<Reply> got;
      REQUIRE(p.feed(std::string_view(input).substr(0, a), got).ok());
      REQUIRE(p.feed(std::string_view(input).substr(a, b - a), got).ok());
      REQUIRE(p.feed(std::string_view(input).substr(b), got).ok());
      REQUIRE(got.size() == expected.size());
      for (size_t i = 0; i < got.size(); ++i) {
        CHECK(got[i].code == expected[i].code);
        CHECK(got[i].enhanced == expected[i].enhanced);
        CHECK(got[i].lines == expected[i].lines);
      }
    }
  }
}

TEST_CASE("reply parser: errors, and the parser stays failed") {
  const std::vector<std::string> bad = {
      "hello\r\n",                // no code
      "25\r\n",                   // too short
      "199 low\r\n",              // out of range
      "600 high\r\n",             // out of range
      "250_bad separator\r\n",    // separator
      "250-a\r\n251 b\r\n",       // continuation with another code
      std::string(4097, '2') + "\r\n",
  };
  for (const std::string& b : bad) {
    CAPTURE(b.substr(0, 40));
    ReplyParser p;
    std::vector<Reply> out;
    CHECK_FALSE(p.feed(b, out).ok());
    CHECK_FALSE(p.feed("250 ok\r\n", out).ok());
    CHECK(out.empty());
  }
}

TEST_CASE("reply parser: line and line-count limits") {
  {
    ReplyParser p;
    std::vector<Reply> out;
    const std::string line = "250 " + std::string(4092, 'x') + "\r\n";  // exactly 4096 octets
    CHECK(p.feed(line, out).ok());
    CHECK(out.size() == 1);
  }
  {
    ReplyParser p;
    std::vector<Reply> out;
    // Fed a byte at a time, an endless line is still caught without CRLF.
    Status st = Status::success();
    for (int i = 0; i < 5000 && st.ok(); ++i) st = p.feed("2", out);
    CHECK_FALSE(st.ok());
  }
  {
    ReplyParser p;
    std::vector<Reply> out;
    std::string many;
    for (int i = 0; i < 127; ++i) many += "250-x\r\n";
    CHECK(p.feed(many + "250 last\r\n", out).ok());  // 128 lines
    REQUIRE(out.size() == 1);
    CHECK(out[0].lines.size() == 128);
    CHECK_FALSE(p.feed(many + "250-x\r\n250 last\r\n", out).ok());  // 129
  }
}

TEST_CASE("reply parser: replies before an error are still returned") {
  ReplyParser p;
  std::vector<Reply> out;
  CHECK_FALSE(p.feed("250 ok\r\ngarbage\r\n", out).ok());
  REQUIRE(out.size() == 1);
  CHECK(out[0].code == 250);
}

// --- EHLO keywords ---------------------------------------------------------------

TEST_CASE("parse_ehlo: keywords, SIZE and both AUTH forms") {
  ReplyParser p;
  std::vector<Reply> out;
  REQUIRE(p.feed(crlf({"250-backend.example says hi", "250-starttls", "250-PIPELINING", "250-SIZE",
                       "250-8BITMIME", "250-AUTH=LOGIN", "250-AUTH PLAIN login CRAM-MD5", "250 SMTPUTF8"}),
                 out)
              .ok());
  const Extensions e = parse_ehlo(out.at(0));
  CHECK(e.starttls);
  CHECK(e.pipelining);
  CHECK(e.size);
  CHECK(e.size_limit == 0);
  CHECK(e.eightbitmime);
  CHECK(e.smtputf8);
  CHECK_FALSE(e.enhanced_status_codes);
  CHECK(e.auth);
  CHECK(e.auth_mechanisms == std::vector<std::string>{"LOGIN", "PLAIN", "CRAM-MD5"});
  CHECK(e.has_auth_mechanism("plain"));

  std::vector<Reply> out2;
  ReplyParser p2;
  REQUIRE(p2.feed("250-STARTTLS\r\n250 SIZE 1000\r\n", out2).ok());
  const Extensions e2 = parse_ehlo(out2.at(0));
  CHECK_FALSE(e2.starttls);  // the first line is the server's name, not a keyword
  CHECK(e2.size_limit == 1000);
}

// --- dot-stuffing ----------------------------------------------------------------

TEST_CASE("dot_stuff: leading dots, bare LF, lone CR and the terminator") {
  CHECK(dot_stuff("") == ".\r\n");
  CHECK(dot_stuff("a\r\n") == "a\r\n.\r\n");
  CHECK(dot_stuff("a") == "a\r\n.\r\n");
  CHECK(dot_stuff(".") == "..\r\n.\r\n");
  CHECK(dot_stuff(".a\r\n.\r\nb.c\r\n..d") == "..a\r\n..\r\nb.c\r\n...d\r\n.\r\n");
  CHECK(dot_stuff("a\nb\n.c\n") == "a\r\nb\r\n..c\r\n.\r\n");
  CHECK(dot_stuff("a\rb\r") == "a\r\nb\r\n.\r\n");
  CHECK(dot_stuff("a\r.b") == "a\r\n..b\r\n.\r\n");
  CHECK(dot_stuff("\r\n\r\n") == "\r\n\r\n.\r\n");
  CHECK(dot_stuff(kMessage) == kStuffed);
}

TEST_CASE("dot_stuff: a stuffer fed in two pieces agrees with the whole, at every split") {
  const std::string msg = ".a\r\n.\r\nb\r.\n.\r\r\n.x\n..";
  const std::string whole = dot_stuff(msg);
  for (size_t cut = 0; cut <= msg.size(); ++cut) {
    DotStuffer st;
    std::string out;
    st.feed(std::string_view(msg).substr(0, cut), out);
    st.feed(std::string_view(msg).substr(cut), out);
    st.finish(out);
    CHECK(out == whole);
  }
}

// --- dialogues: plain delivery ------------------------------------------------------

TEST_CASE("dialogue: delivery with PIPELINING, SIZE and a reused connection") {
  ClientJob job = make_job({"bob@example.com", "carol@example.com"});
  Dialogue d(job);
  handshake(d);
  CHECK(d.client() == crlf({"MAIL FROM:<alice@sender.example> SIZE=33", "RCPT TO:<bob@example.com>",
                            "RCPT TO:<carol@example.com>", "DATA"}));
  d.server("250 2.1.0 Ok");
  d.server("250 2.1.5 Ok");
  CHECK(d.client().empty());
  d.server("250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>");
  CHECK(d.client() == kStuffed);
  d.s.pump();
  CHECK(d.client().empty());
  CHECK_FALSE(d.s.finished());
  d.server("250 2.0.0 Ok: queued as 4Xyz");
  REQUIRE(d.s.finished());
  CHECK(d.s.reusable());
  CHECK_FALSE(d.s.wants_close());
  REQUIRE(d.s.results().size() == 2);
  for (const RcptResult& r : d.s.results()) {
    CHECK(r.outcome == Outcome::kDelivered);
    CHECK(r.code == 250);
    CHECK(r.enhanced == "2.0.0");
    CHECK(r.text == "2.0.0 Ok: queued as 4Xyz");
  }
  CHECK(d.result(1).recipient == "carol@example.com");
  CHECK(d.s.last_error().empty());

  // The same connection carries the next message without a new EHLO.
  ClientJob second = make_job({"dave@example.com"});
  second.sender = "";
  d.s.next(second);
  CHECK_FALSE(d.s.finished());
  CHECK(d.result(0).recipient == "dave@example.com");
  CHECK(d.client() == crlf({"MAIL FROM:<> SIZE=33", "RCPT TO:<dave@example.com>", "DATA"}));
  d.server("250 Ok\r\n250 Ok\r\n354 go");
  CHECK(d.client() == kStuffed);
  d.server("250 Ok");
  CHECK(d.s.finished());
  CHECK(d.result(0).outcome == Outcome::kDelivered);

  d.s.quit();
  CHECK(d.client() == "QUIT\r\n");
  CHECK(d.s.wants_close());
}

TEST_CASE("dialogue: delivery without PIPELINING is lock-step") {
  Dialogue d(make_job({"bob@example.com", "carol@example.com"}));
  handshake(d, kEhloBasic);
  CHECK(d.client() == crlf({"MAIL FROM:<alice@sender.example>"}));
  d.server("250 2.1.0 Ok");
  CHECK(d.client() == crlf({"RCPT TO:<bob@example.com>"}));
  d.server("250 2.1.5 Ok");
  CHECK(d.client() == crlf({"RCPT TO:<carol@example.com>"}));
  d.server("250 2.1.5 Ok");
  CHECK(d.client() == crlf({"DATA"}));
  d.server("354 go ahead");
  CHECK(d.client() == kStuffed);
  d.server("250 2.0.0 queued");
  CHECK(d.s.finished());
  CHECK(d.s.reusable());
  CHECK(d.result(0).outcome == Outcome::kDelivered);
  CHECK(d.result(1).outcome == Outcome::kDelivered);
}

TEST_CASE("dialogue: BODY=8BITMIME and SMTPUTF8 when needed and offered") {
  ClientJob job = make_job({"jörg@exämple.de"});
  job.body_8bit = true;
  job.smtputf8 = true;
  Dialogue d(job);
  handshake(d);
  CHECK(d.client() == crlf({"MAIL FROM:<alice@sender.example> SIZE=33 BODY=8BITMIME SMTPUTF8",
                            "RCPT TO:<jörg@exämple.de>", "DATA"}));
}

TEST_CASE("dialogue: 8-bit body to a server without 8BITMIME goes without the parameter") {
  ClientJob job = make_job();
  job.body_8bit = true;
  Dialogue d(job);
  handshake(d, kEhloBasic);
  CHECK(d.client() == crlf({"MAIL FROM:<alice@sender.example>"}));
}

TEST_CASE("dialogue: message over the server's SIZE limit fails without MAIL") {
  ClientJob job = make_job({"a@example.com", "b@example.com"});
  job.size = 20'000'000;
  Dialogue d(job);
  handshake(d);
  CHECK(d.client().empty());
  CHECK(d.s.finished());
  CHECK(d.s.reusable());
  for (const RcptResult& r : d.s.results()) {
    CHECK(r.outcome == Outcome::kFailed);
    CHECK(r.enhanced == "5.3.4");
    CHECK(r.code == 0);
  }
  CHECK(contains(d.s.last_error(), "SIZE"));
}

TEST_CASE("dialogue: SMTPUTF8 needed but not offered fails with 5.6.7") {
  ClientJob job = make_job();
  job.smtputf8 = true;
  Dialogue d(job);
  handshake(d, kEhloBasic);
  CHECK(d.client().empty());
  REQUIRE(d.s.finished());
  CHECK(d.result(0).outcome == Outcome::kFailed);
  CHECK(d.result(0).enhanced == "5.6.7");
  CHECK(contains(d.result(0).text, "SMTPUTF8"));
}

TEST_CASE("dialogue: mixed RCPT replies 250 / 450 / 550") {
  Dialogue d(make_job({"ok@example.com", "later@example.com", "gone@example.com"}));
  handshake(d);
  d.client();
  d.server(crlf({"250 2.1.0 Ok", "250 2.1.5 Ok", "450 4.2.1 mailbox busy", "550-5.1.1 no such", "550 5.1.1 user"}) +
           "354 go");
  CHECK(d.client() == kStuffed);
  d.server("250 2.0.0 queued");
  REQUIRE(d.s.finished());
  CHECK(d.result(0).outcome == Outcome::kDelivered);
  CHECK(d.result(1).outcome == Outcome::kDeferred);
  CHECK(d.result(1).code == 450);
  CHECK(d.result(1).enhanced == "4.2.1");
  CHECK(d.result(1).text == "4.2.1 mailbox busy");
  CHECK(d.result(2).outcome == Outcome::kFailed);
  CHECK(d.result(2).code == 550);
  CHECK(d.result(2).enhanced == "5.1.1");
  CHECK(d.result(2).text == "5.1.1 no such user");
  CHECK(d.s.last_error() == "RCPT TO:<gone@example.com> rejected: 550 5.1.1 no such user");
}

TEST_CASE("dialogue: no RCPT accepted, pipelined: DATA's 554 is ignored, then RSET") {
  Dialogue d(make_job({"x@example.com", "y@example.com"}));
  handshake(d);
  d.client();
  d.server(crlf({"250 2.1.0 Ok", "550 5.1.1 no", "451 4.3.0 later"}) + "554 5.5.1 no valid recipients");
  CHECK(d.client() == crlf({"RSET"}));
  CHECK_FALSE(d.s.finished());  // at rest only after the RSET reply
  d.server("250 2.0.0 Ok");
  REQUIRE(d.s.finished());
  CHECK(d.s.reusable());
  CHECK(d.result(0).outcome == Outcome::kFailed);
  CHECK(d.result(1).outcome == Outcome::kDeferred);
}

TEST_CASE("dialogue: no RCPT accepted, lock-step: no DATA, RSET") {
  Dialogue d(make_job());
  handshake(d, kEhloBasic);
  d.client();
  d.server("250 Ok");
  CHECK(d.client() == crlf({"RCPT TO:<bob@example.com>"}));
  d.server("550 5.7.1 relay denied");
  CHECK(d.client() == crlf({"RSET"}));
  d.server("250 Ok");
  CHECK(d.s.reusable());
  CHECK(d.result(0).outcome == Outcome::kFailed);
}

TEST_CASE("dialogue: a 354 although no RCPT was accepted gets an empty body") {
  Dialogue d(make_job());
  handshake(d);
  d.client();
  d.server(crlf({"250 Ok", "550 no"}) + "354 go");
  CHECK(d.client() == crlf({"."}));
  d.server("554 no recipients");
  CHECK(d.client() == crlf({"RSET"}));
  d.server("250 Ok");
  CHECK(d.s.reusable());
  CHECK(d.result(0).outcome == Outcome::kFailed);
}

TEST_CASE("dialogue: end-of-data 451 defers, 554 fails") {
  for (auto [reply, outcome] : {std::pair{"451 4.3.0 try later", Outcome::kDeferred},
                                std::pair{"554 5.7.1 spam", Outcome::kFailed}}) {
    Dialogue d(make_job({"a@example.com", "b@example.com"}));
    handshake(d);
    d.client();
    d.server(crlf({"250 Ok", "250 Ok", "550 5.1.1 no"}) + "354 go");
    CHECK(d.client() == kStuffed);
    d.server(reply);
    REQUIRE(d.s.finished());
    CHECK(d.s.reusable());
    CHECK(d.result(0).outcome == outcome);
    CHECK(d.result(0).text == std::string(reply).substr(4));
    CHECK(d.result(1).outcome == Outcome::kFailed);  // the RCPT verdict stays
    CHECK(d.result(1).code == 550);
  }
}

TEST_CASE("dialogue: MAIL rejected, pipelined and lock-step") {
  {
    Dialogue d(make_job({"a@example.com", "b@example.com"}));
    handshake(d);
    d.client();
    d.server(crlf({"553 5.1.8 bad sender", "503 5.5.1 need MAIL", "503 5.5.1 need MAIL"}) + "503 5.5.1 need RCPT");
    CHECK(d.client() == crlf({"RSET"}));
    d.server("250 Ok");
    REQUIRE(d.s.finished());
    for (const RcptResult& r : d.s.results()) {
      CHECK(r.outcome == Outcome::kFailed);
      CHECK(r.code == 553);
      CHECK(r.enhanced == "5.1.8");
    }
  }
  {
    Dialogue d(make_job());
    handshake(d, kEhloBasic);
    d.client();
    d.server("451 4.3.0 try later");
    CHECK(d.client() == crlf({"RSET"}));
    d.server("250 Ok");
    CHECK(d.s.reusable());
    CHECK(d.result(0).outcome == Outcome::kDeferred);
  }
}

TEST_CASE("dialogue: DATA refused defers or fails the accepted recipients") {
  Dialogue d(make_job());
  handshake(d);
  d.client();
  d.server(crlf({"250 Ok", "250 Ok"}) + "452 4.3.1 out of memory");
  CHECK(d.client() == crlf({"RSET"}));
  d.server("250 Ok");
  CHECK(d.s.reusable());
  CHECK(d.result(0).outcome == Outcome::kDeferred);
  CHECK(d.result(0).code == 452);
}

// --- dialogues: TLS -----------------------------------------------------------------

TEST_CASE("dialogue: STARTTLS under 'may' when offered, EHLO again afterwards") {
  ClientJob job = make_job();
  job.tls = TlsPolicy::kMay;
  Dialogue d(job);
  handshake(d, "250-backend.example\r\n250-STARTTLS\r\n250 SIZE 100");
  CHECK(d.client() == crlf({"STARTTLS"}));
  CHECK_FALSE(d.s.wants_tls());
  // Whatever follows the 220 in plaintext is an injection and must be dropped.
  d.server("220 2.0.0 Ready to start TLS\r\n250 2.1.0 injected");
  CHECK(d.s.wants_tls());
  CHECK(d.client().empty());
  d.s.tls_established(false);
  CHECK_FALSE(d.s.wants_tls());
  CHECK(d.client() == crlf({"EHLO mx1.mxguard.test"}));
  d.server("250-backend.example\r\n250 PIPELINING");  // the old SIZE is forgotten
  CHECK(d.client() == crlf({"MAIL FROM:<alice@sender.example>", "RCPT TO:<bob@example.com>", "DATA"}));
  d.server("250 Ok\r\n250 Ok\r\n354 go");
  CHECK(d.client() == kStuffed);
  d.server("250 Ok");
  CHECK(d.result(0).outcome == Outcome::kDelivered);
}

TEST_CASE("dialogue: 'may' without STARTTLS offered stays in clear; 'none' never asks") {
  for (TlsPolicy policy : {TlsPolicy::kMay, TlsPolicy::kNone}) {
    ClientJob job = make_job();
    job.tls = policy;
    Dialogue d(job);
    handshake(d, policy == TlsPolicy::kMay ? kEhloBasic : "250-backend.example\r\n250 STARTTLS");
    CHECK(d.client() == crlf({"MAIL FROM:<alice@sender.example>"}));
  }
}

TEST_CASE("dialogue: 'encrypt' without STARTTLS offered defers everything") {
  ClientJob job = make_job({"a@example.com", "b@example.com"});
  job.tls = TlsPolicy::kEncrypt;
  Dialogue d(job);
  handshake(d, kEhloBasic);
  CHECK(d.client() == crlf({"QUIT"}));
  CHECK(d.s.wants_close());
  REQUIRE(d.s.finished());
  CHECK_FALSE(d.s.reusable());
  for (const RcptResult& r : d.s.results()) {
    CHECK(r.outcome == Outcome::kDeferred);
    CHECK(r.code == 0);
    CHECK(r.enhanced == "4.7.4");
    CHECK(r.text == "TLS required by policy but the server does not offer STARTTLS");
  }
}

TEST_CASE("dialogue: STARTTLS refused: 'may' continues in clear, 'encrypt' defers") {
  {
    ClientJob job = make_job();
    job.tls = TlsPolicy::kMay;
    Dialogue d(job);
    handshake(d, "250-backend.example\r\n250 STARTTLS");
    CHECK(d.client() == crlf({"STARTTLS"}));
    d.server("454 4.7.0 TLS not available");
    CHECK(d.client() == crlf({"MAIL FROM:<alice@sender.example>"}));
  }
  {
    ClientJob job = make_job();
    job.tls = TlsPolicy::kEncrypt;
    Dialogue d(job);
    handshake(d, "250-backend.example\r\n250 STARTTLS");
    CHECK(d.client() == crlf({"STARTTLS"}));
    d.server("454 4.7.0 TLS not available");
    CHECK(d.client() == crlf({"QUIT"}));
    CHECK(d.s.wants_close());
    CHECK(d.result(0).outcome == Outcome::kDeferred);
    CHECK(contains(d.result(0).text, "refused STARTTLS: 454 4.7.0 TLS not available"));
  }
}

TEST_CASE("dialogue: tls_failed defers everything and closes without QUIT") {
  ClientJob job = make_job();
  job.tls = TlsPolicy::kEncrypt;
  Dialogue d(job);
  handshake(d, "250-backend.example\r\n250 STARTTLS");
  d.client();
  d.server("220 go ahead");
  REQUIRE(d.s.wants_tls());
  d.s.tls_failed("certificate verify failed\r\n");
  CHECK(d.s.wants_close());
  CHECK(d.client().empty());
  REQUIRE(d.s.finished());
  CHECK(d.result(0).outcome == Outcome::kDeferred);
  CHECK(d.result(0).enhanced == "4.7.5");
  CHECK(d.result(0).text == "TLS handshake with the backend failed: certificate verify failed");
  d.s.connection_lost("EOF");  // late engine events change nothing
  CHECK(d.result(0).enhanced == "4.7.5");
}

TEST_CASE("dialogue: DANE with an unverified certificate defers") {
  ClientJob job = make_job();
  job.tls = TlsPolicy::kDane;
  Dialogue d(job);
  handshake(d, "250-backend.example\r\n250 STARTTLS");
  d.client();
  d.server("220 go ahead");
  d.s.tls_established(false);
  CHECK(d.client() == crlf({"QUIT"}));
  CHECK(d.s.wants_close());
  CHECK(d.result(0).outcome == Outcome::kDeferred);
  CHECK(contains(d.result(0).text, "DANE TLSA verification failed"));
}

TEST_CASE("dialogue: implicit TLS (port 465) skips STARTTLS; DANE checked before the greeting") {
  {
    ClientJob job = make_job();
    job.tls = TlsPolicy::kEncrypt;
    job.implicit_tls = true;
    Dialogue d(job);
    d.s.tls_established(true);
    handshake(d, "250-backend.example\r\n250 STARTTLS");
    CHECK(d.client() == crlf({"MAIL FROM:<alice@sender.example>"}));
  }
  {
    ClientJob job = make_job();
    job.tls = TlsPolicy::kDane;
    job.implicit_tls = true;
    Dialogue d(job);
    d.s.tls_established(false);
    CHECK(d.s.wants_close());
    CHECK(d.client().empty());
    CHECK(contains(d.result(0).text, "DANE"));
  }
}

// --- dialogues: AUTH ------------------------------------------------------------------

namespace {

ClientJob auth_job() {
  ClientJob job = make_job();
  job.tls = TlsPolicy::kMay;
  job.auth_user = "user";
  job.auth_password = "s3cr3t-pass";
  return job;
}

// Up to the EHLO after the TLS handshake.
void tls_up(Dialogue& d) {
  handshake(d, "250-backend.example\r\n250 STARTTLS");
  CHECK(d.client() == crlf({"STARTTLS"}));
  d.server("220 go ahead");
  d.s.tls_established(true);
  CHECK(d.client() == crlf({"EHLO mx1.mxguard.test"}));
}

void no_password_leak(const ClientSession& s) {
  CHECK_FALSE(contains(s.last_error(), "s3cr3t"));
  for (const RcptResult& r : s.results()) CHECK_FALSE(contains(r.text, "s3cr3t"));
}

}  // namespace

TEST_CASE("dialogue: AUTH PLAIN with an initial response") {
  Dialogue d(auth_job());
  tls_up(d);
  d.server("250-backend.example\r\n250-AUTH LOGIN PLAIN\r\n250 PIPELINING");
  // base64("\0user\0s3cr3t-pass")
  CHECK(d.client() == crlf({"AUTH PLAIN AHVzZXIAczNjcjN0LXBhc3M="}));
  d.server("235 2.7.0 Authentication successful");
  CHECK(d.client() == crlf({"MAIL FROM:<alice@sender.example>", "RCPT TO:<bob@example.com>", "DATA"}));
}

TEST_CASE("dialogue: AUTH LOGIN through its 334 challenges") {
  Dialogue d(auth_job());
  tls_up(d);
  d.server("250-backend.example\r\n250 AUTH=LOGIN");
  CHECK(d.client() == crlf({"AUTH LOGIN"}));
  d.server("334 VXNlcm5hbWU6");
  CHECK(d.client() == crlf({"dXNlcg=="}));
  d.server("334 UGFzc3dvcmQ6");
  CHECK(d.client() == crlf({"czNjcjN0LXBhc3M="}));
  d.server("235 2.7.0 ok");
  CHECK(d.client() == crlf({"MAIL FROM:<alice@sender.example>"}));
}

TEST_CASE("dialogue: AUTH 535 defers every recipient with a clear text and no password") {
  Dialogue d(auth_job());
  tls_up(d);
  d.server("250-backend.example\r\n250 AUTH PLAIN");
  d.client();
  d.server("535 5.7.8 Error: authentication failed");
  CHECK(d.client() == crlf({"QUIT"}));
  CHECK(d.s.wants_close());
  REQUIRE(d.s.finished());
  CHECK(d.result(0).outcome == Outcome::kDeferred);
  CHECK(d.result(0).enhanced == "4.7.8");
  CHECK(d.result(0).text == "authentication failed for user user: 535 5.7.8 Error: authentication failed");
  CHECK(d.s.last_error() == d.result(0).text);
  no_password_leak(d.s);
}

TEST_CASE("dialogue: AUTH needs TLS and a server offering AUTH") {
  {
    Dialogue d(auth_job());
    handshake(d, kEhloBasic);  // no STARTTLS
    CHECK(d.client() == crlf({"QUIT"}));
    CHECK(d.result(0).outcome == Outcome::kDeferred);
    CHECK(d.result(0).text == "AUTH requires TLS; the backend did not offer STARTTLS");
    no_password_leak(d.s);
  }
  {
    Dialogue d(auth_job());
    tls_up(d);
    d.server(kEhloBasic);
    CHECK(d.client() == crlf({"QUIT"}));
    CHECK(contains(d.result(0).text, "does not offer AUTH"));
  }
  {
    Dialogue d(auth_job());
    tls_up(d);
    d.server("250-backend.example\r\n250 AUTH CRAM-MD5");
    CHECK(d.client() == crlf({"QUIT"}));
    CHECK(contains(d.result(0).text, "neither PLAIN nor LOGIN (CRAM-MD5)"));
  }
}

// --- dialogues: greeting and EHLO ----------------------------------------------------

TEST_CASE("dialogue: greeting 421 or 554 defers everything") {
  for (const char* greeting : {"421 4.3.2 Service not available", "554 5.7.1 no service for you"}) {
    Dialogue d(make_job({"a@example.com", "b@example.com"}));
    d.server(greeting);
    CHECK(d.client() == crlf({"QUIT"}));
    CHECK(d.s.wants_close());
    REQUIRE(d.s.finished());
    for (const RcptResult& r : d.s.results()) {
      CHECK(r.outcome == Outcome::kDeferred);
      CHECK(r.enhanced.front() == '4');
      CHECK(r.text == std::string("backend refused the session: ") + greeting);
    }
  }
}

TEST_CASE("dialogue: EHLO 502 falls back to HELO, no extensions") {
  Dialogue d(make_job());
  d.server("220 old.example SMTP");
  CHECK(d.client() == crlf({"EHLO mx1.mxguard.test"}));
  d.server("502 5.5.2 command not recognized");
  CHECK(d.client() == crlf({"HELO mx1.mxguard.test"}));
  d.server("250 old.example");
  CHECK(d.client() == crlf({"MAIL FROM:<alice@sender.example>"}));  // no SIZE=, lock-step
  d.server("250 ok");
  CHECK(d.client() == crlf({"RCPT TO:<bob@example.com>"}));
}

TEST_CASE("dialogue: HELO fallback with TLS required defers") {
  ClientJob job = make_job();
  job.tls = TlsPolicy::kEncrypt;
  Dialogue d(job);
  d.server("220 old.example SMTP");
  d.client();
  d.server("500 what?");
  d.client();
  d.server("250 old.example");
  CHECK(d.client() == crlf({"QUIT"}));
  CHECK(contains(d.result(0).text, "TLS required by policy"));
}

// --- dialogues: lost connections and bad replies ---------------------------------------

TEST_CASE("dialogue: connection lost at several points") {
  SUBCASE("before the greeting") {
    Dialogue d(make_job());
    d.s.connection_lost("connect timeout");
    CHECK(d.result(0).text == "lost connection with backend while waiting for the greeting: connect timeout");
    CHECK(d.result(0).enhanced == "4.4.2");
    CHECK(d.result(0).code == 0);
  }
  SUBCASE("after RCPT, keeping the RCPT verdicts") {
    Dialogue d(make_job({"a@example.com", "b@example.com"}));
    handshake(d);
    d.client();
    d.server("250 Ok\r\n550 5.1.1 no");
    d.s.connection_lost("EOF");
    CHECK(d.result(0).outcome == Outcome::kFailed);
    CHECK(d.result(1).outcome == Outcome::kDeferred);
    CHECK(d.result(1).text == "lost connection with backend while sending RCPT TO: EOF");
  }
  SUBCASE("in the middle of the message") {
    std::string big(600'000, 'x');
    ClientJob job = make_job();
    job.message = big;
    job.size = big.size();
    Dialogue d(job);
    handshake(d);
    d.client();
    d.server("250 Ok\r\n250 Ok\r\n354 go");
    CHECK(!d.client().empty());
    d.s.connection_lost("reset by peer");
    CHECK(d.result(0).text == "lost connection with backend while sending the message: reset by peer");
  }
  SUBCASE("after the end of data was sent: deferred, not delivered") {
    Dialogue d(make_job());
    handshake(d);
    d.client();
    d.server("250 Ok\r\n250 Ok\r\n354 go");
    d.client();
    d.s.connection_lost("timeout");
    CHECK(d.result(0).outcome == Outcome::kDeferred);
    CHECK(d.result(0).text == "lost connection with backend while waiting for the reply to the end of data: timeout");
  }
  SUBCASE("while idle after delivery: results stay") {
    Dialogue d(make_job());
    handshake(d);
    d.client();
    d.server("250 Ok\r\n250 Ok\r\n354 go");
    d.client();
    d.server("250 Ok");
    d.s.connection_lost("EOF");
    CHECK(d.result(0).outcome == Outcome::kDelivered);
    CHECK(d.s.wants_close());
    CHECK_FALSE(d.s.reusable());
  }
}

TEST_CASE("dialogue: a malformed reply defers and closes") {
  Dialogue d(make_job());
  d.server("220 ok");
  d.client();
  d.server("HTTP/1.1 400 Bad Request");
  CHECK(d.s.wants_close());
  CHECK(d.client().empty());
  CHECK(d.result(0).outcome == Outcome::kDeferred);
  CHECK(d.result(0).text == "backend sent a malformed reply");
  CHECK(contains(d.s.last_error(), "malformed"));
}

TEST_CASE("dialogue: an unexpected 3xx defers and closes; 421 mid-transaction too") {
  {
    Dialogue d(make_job());
    handshake(d);
    d.client();
    d.server("354 what?");
    CHECK(d.s.wants_close());
    CHECK(d.client().empty());
    CHECK(d.result(0).outcome == Outcome::kDeferred);
    CHECK(contains(d.result(0).text, "unexpected reply to MAIL FROM: 354"));
  }
  {
    Dialogue d(make_job({"a@example.com", "b@example.com"}));
    handshake(d);
    d.client();
    d.server("250 Ok\r\n550 5.1.1 no\r\n421 4.4.2 timeout");
    CHECK(d.s.wants_close());
    CHECK(d.result(0).outcome == Outcome::kFailed);
    CHECK(d.result(1).outcome == Outcome::kDeferred);
    CHECK(contains(d.result(1).text, "421 4.4.2 timeout"));
  }
}

TEST_CASE("dialogue: replies split into single bytes") {
  Dialogue d(make_job());
  const std::string server = "220 hi\r\n" + std::string(kEhloFull) + "\r\n250 Ok\r\n250 Ok\r\n354 go\r\n250 done\r\n";
  std::string said;
  for (char c : server) {
    d.s.receive(std::string_view(&c, 1));
    said += d.client();
  }
  CHECK(said == crlf({"EHLO mx1.mxguard.test", "MAIL FROM:<alice@sender.example> SIZE=33",
                      "RCPT TO:<bob@example.com>", "DATA"}) +
                    std::string(kStuffed));
  CHECK(d.result(0).outcome == Outcome::kDelivered);
}

// --- dialogues: probe, reuse, pump ------------------------------------------------

TEST_CASE("dialogue: callout probe, pipelined and lock-step") {
  {
    ClientJob job = make_job({"exists@example.com", "nobody@example.com"});
    job.probe = true;
    Dialogue d(job);
    handshake(d);
    CHECK(d.client() == crlf({"MAIL FROM:<>", "RCPT TO:<exists@example.com>", "RCPT TO:<nobody@example.com>", "RSET"}));
    d.server("250 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 unknown\r\n250 Ok");
    REQUIRE(d.s.finished());
    CHECK(d.s.reusable());
    CHECK(d.result(0).outcome == Outcome::kDelivered);
    CHECK(d.result(1).outcome == Outcome::kFailed);
    CHECK(d.result(1).enhanced == "5.1.1");
  }
  {
    ClientJob job = make_job();
    job.probe = true;
    Dialogue d(job);
    handshake(d, kEhloBasic);
    CHECK(d.client() == crlf({"MAIL FROM:<>"}));
    d.server("250 Ok");
    CHECK(d.client() == crlf({"RCPT TO:<bob@example.com>"}));
    d.server("250 Ok");
    CHECK(d.result(0).outcome == Outcome::kDelivered);  // final already
    CHECK(d.client() == crlf({"RSET"}));
    d.server("250 Ok");
    CHECK(d.s.reusable());
  }
}

TEST_CASE("dialogue: next() after a failed transaction; incompatible jobs deferred") {
  Dialogue d(make_job());
  handshake(d);
  d.client();
  d.server("250 Ok\r\n550 no\r\n554 no recipients");
  d.client();
  d.server("250 Ok");
  REQUIRE(d.s.reusable());
  ClientJob tls_job = make_job({"z@example.com"});
  tls_job.tls = TlsPolicy::kEncrypt;
  d.s.next(tls_job);
  CHECK(d.client().empty());
  CHECK(d.s.finished());
  CHECK(d.s.reusable());
  CHECK(d.result(0).recipient == "z@example.com");
  CHECK(d.result(0).outcome == Outcome::kDeferred);
  d.s.next(make_job({"y@example.com"}));
  CHECK(d.client() == crlf({"MAIL FROM:<alice@sender.example> SIZE=33", "RCPT TO:<y@example.com>", "DATA"}));
}

TEST_CASE("dialogue: large message through pump() in pieces, dots at piece boundaries") {
  constexpr size_t kPiece = 256 * 1024;
  std::string msg = "Subject: big\r\n\r\n";
  // A line ends exactly at each piece boundary, so the next piece starts
  // with a '.' that must be stuffed; another boundary falls inside a CRLF.
  while (msg.size() < kPiece - 2) msg += std::string(std::min<size_t>(70, kPiece - 2 - msg.size()), 'a') + "\r\n";
  msg.resize(kPiece - 2);
  msg += "\r\n.first of piece two\r\n";
  while (msg.size() < 2 * kPiece - 1) msg += "x";
  msg += "\r\n.after split CRLF\n";
  msg += std::string(700'000, 'y') + "\n.\n..\n";

  ClientJob job = make_job();
  job.message = msg;
  job.size = msg.size();
  Dialogue d(job);
  handshake(d);
  d.client();
  d.server("250 Ok\r\n250 Ok\r\n354 go");
  std::string sent;
  size_t pieces = 0;
  for (std::string out = d.client(); !out.empty(); out = d.client()) {
    CHECK(out.size() <= kPiece + kPiece / 2);
    sent += out;
    ++pieces;
    d.s.pump();
  }
  CHECK(pieces >= 4);
  CHECK(sent == dot_stuff(msg));
  CHECK(contains(sent, "\r\n..first of piece two\r\n"));
  CHECK(contains(sent, "\r\n..after split CRLF\r\n"));
  CHECK(sent.ends_with("\r\n..\r\n...\r\n.\r\n"));
  d.server("250 Ok");
  CHECK(d.result(0).outcome == Outcome::kDelivered);
}

TEST_CASE("dialogue: a reply in the middle of the message ends the session") {
  const std::string big(600'000, 'x');
  ClientJob job = make_job();
  job.message = big;
  job.size = big.size();
  Dialogue d(job);
  handshake(d);
  d.client();
  d.server("250 Ok\r\n250 Ok\r\n354 go");
  CHECK(d.client().size() < big.size());
  d.server("552 5.3.4 message too big");
  CHECK(d.s.wants_close());
  d.s.pump();
  CHECK(d.client().empty());
  REQUIRE(d.s.finished());
  CHECK(d.result(0).outcome == Outcome::kFailed);
  CHECK(d.result(0).code == 552);
}

TEST_CASE("dialogue: quit() before results exist defers the rest") {
  {
    Dialogue d(make_job());
    handshake(d, kEhloBasic);
    CHECK(d.client() == crlf({"MAIL FROM:<alice@sender.example>"}));
    d.s.quit();
    CHECK(d.client() == crlf({"QUIT"}));
    CHECK(d.s.finished());
    CHECK(d.s.wants_close());
    CHECK(d.result(0).outcome == Outcome::kDeferred);
  }
  {
    // With DATA in flight a 354 may come back: QUIT would become message text.
    Dialogue d(make_job());
    handshake(d);
    d.client();
    d.s.quit();
    CHECK(d.client().empty());
    CHECK(d.s.wants_close());
  }
}

TEST_CASE("dialogue: addresses that would break the command line are refused") {
  Dialogue d(make_job({"ok@example.com", "bad>\r\nRSET@example.com"}));
  handshake(d);
  CHECK(d.client() == crlf({"MAIL FROM:<alice@sender.example> SIZE=33", "RCPT TO:<ok@example.com>", "DATA"}));
  CHECK(d.result(1).outcome == Outcome::kFailed);
  CHECK(d.result(1).enhanced == "5.1.3");
}

// --- DSN ----------------------------------------------------------------------------

namespace {

struct Part {
  std::map<std::string, std::string> headers;  // lower-case names, unfolded
  std::string body;
};

// Header section into a map (folded lines joined); returns the body offset.
size_t parse_headers(std::string_view text, std::map<std::string, std::string>& out) {
  const size_t end = text.find("\r\n\r\n");
  REQUIRE(end != std::string_view::npos);
  std::string last;
  size_t pos = 0;
  while (pos < end + 2) {
    const size_t eol = text.find("\r\n", pos);
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) break;
    if (line[0] == ' ' || line[0] == '\t') {
      out[last] += std::string(line);
      continue;
    }
    const size_t colon = line.find(':');
    REQUIRE(colon != std::string_view::npos);
    last.clear();
    for (char c : line.substr(0, colon)) last.push_back(static_cast<char>(std::tolower(c)));
    out[last] = std::string(line.substr(colon + 1));
  }
  return end + 4;
}

std::string ds_field(std::string_view block, std::string_view name) {
  const std::string key = std::string(name) + ": ";
  const size_t at = block.find(key);
  if (at == std::string_view::npos) return "";
  std::string v(block.substr(at + key.size(), block.find("\r\n", at) - at - key.size()));
  return v;
}

DsnInput dsn_input() {
  DsnInput in;
  in.reporting_mta = "mx1.mxguard.test";
  in.original_id = "0000000000001.s0";
  in.sender = "alice@sender.example";
  in.arrival_ms = 1'700'000'000'000;
  in.now_ms = 1'700'000'100'000;
  in.recipients = {{"bob@example.com", "5.1.1", "smtp; 550 5.1.1 no such user", "backend.example"},
                   {"carol@example.com", "5.0.0", "no route to the backend", ""}};
  in.boundary = "0000000000001.s0/dsn";
  return in;
}

}  // namespace

TEST_CASE("build_dsn: structure parses back") {
  const std::string original = "From: alice@sender.example\r\nSubject: hello\r\n\tfolded\r\n\r\nsecret body\r\n";
  DsnInput in = dsn_input();
  in.original = original;
  const std::string dsn = build_dsn(in);

  // Every line CRLF, none over 998 octets.
  size_t pos = 0;
  while (pos < dsn.size()) {
    const size_t lf = dsn.find('\n', pos);
    REQUIRE(lf != std::string::npos);
    CHECK(lf > pos);
    CHECK(dsn[lf - 1] == '\r');
    CHECK(lf - 1 - pos <= 998);
    pos = lf + 1;
  }

  std::map<std::string, std::string> top;
  const size_t body_at = parse_headers(dsn, top);
  CHECK(top["from"] == " Mail Delivery System <MAILER-DAEMON@mx1.mxguard.test>");
  CHECK(top["to"] == " <alice@sender.example>");
  CHECK(top["subject"] == " Undelivered Mail Returned to Sender");
  CHECK(top["date"] == " Tue, 14 Nov 2023 22:15:00 +0000");
  CHECK(top["message-id"] == " <0000000000001.s0/dsn@mx1.mxguard.test>");
  CHECK(top["mime-version"] == " 1.0");
  CHECK(top["auto-submitted"] == " auto-replied");
  const std::string& ct = top["content-type"];
  CHECK(contains(ct, "multipart/report"));
  CHECK(contains(ct, "report-type=delivery-status"));
  const size_t b = ct.find("boundary=\"");
  REQUIRE(b != std::string::npos);
  const std::string boundary = ct.substr(b + 10, ct.find('"', b + 10) - b - 10);
  CHECK(boundary == "0000000000001.s0/dsn");

  // Split the body at the delimiter lines.
  std::string_view body = std::string_view(dsn).substr(body_at);
  const std::string delim = "--" + boundary + "\r\n";
  const std::string close = "--" + boundary + "--\r\n";
  REQUIRE(body.ends_with(close));
  std::vector<Part> parts;
  size_t at = body.find(delim);
  while (at != std::string_view::npos) {
    const size_t start = at + delim.size();
    size_t next = body.find("\r\n" + delim, start);
    const size_t end = next == std::string_view::npos ? body.size() - close.size() - 2 : next;
    Part p;
    const std::string_view chunk = body.substr(start, end - start);
    const size_t content = parse_headers(chunk, p.headers);
    p.body = std::string(chunk.substr(content));
    parts.push_back(p);
    at = next == std::string_view::npos ? next : next + 2;
  }
  REQUIRE(parts.size() == 3);
  CHECK(contains(parts[0].headers["content-type"], "text/plain"));
  CHECK(contains(parts[0].body, "bob@example.com"));
  CHECK(contains(parts[0].body, "550 5.1.1 no such user"));
  CHECK(contains(parts[0].body, "carol@example.com"));

  CHECK(parts[1].headers["content-type"] == " message/delivery-status");
  const std::string& ds = parts[1].body;
  CHECK(ds_field(ds, "Reporting-MTA") == "dns; mx1.mxguard.test");
  CHECK(ds_field(ds, "X-MxGuard-Queue-ID") == "0000000000001.s0");
  CHECK(ds_field(ds, "Arrival-Date") == "Tue, 14 Nov 2023 22:13:20 +0000");
  // Per-recipient groups follow the per-message group, blank-line separated.
  const size_t g1 = ds.find("\r\n\r\nFinal-Recipient: rfc822; bob@example.com\r\n");
  const size_t g2 = ds.find("\r\n\r\nFinal-Recipient: rfc822; carol@example.com\r\n");
  REQUIRE(g1 != std::string::npos);
  REQUIRE(g2 != std::string::npos);
  const std::string bob = ds.substr(g1, g2 - g1);
  const std::string carol = ds.substr(g2);
  CHECK(ds_field(bob, "Action") == "failed");
  CHECK(ds_field(bob, "Status") == "5.1.1");
  CHECK(ds_field(bob, "Remote-MTA") == "dns; backend.example");
  CHECK(ds_field(bob, "Diagnostic-Code") == "smtp; 550 5.1.1 no such user");
  CHECK(ds_field(bob, "Last-Attempt-Date") == "Tue, 14 Nov 2023 22:15:00 +0000");
  CHECK(ds_field(carol, "Remote-MTA") == "");
  CHECK(ds_field(carol, "Diagnostic-Code") == "X-MxGuard; no route to the backend");

  CHECK(parts[2].headers["content-type"] == " text/rfc822-headers");
  CHECK(parts[2].body == "From: alice@sender.example\r\nSubject: hello\r\n\tfolded\r\n");
  CHECK_FALSE(contains(dsn, "secret body"));
}

TEST_CASE("build_dsn: expired message says 4.4.7 and the queue lifetime") {
  DsnInput in = dsn_input();
  in.expired = true;
  in.original = "Subject: x\r\n\r\nbody";
  const std::string dsn = build_dsn(in);
  CHECK(contains(dsn, "Status: 4.4.7\r\n"));
  CHECK_FALSE(contains(dsn, "Status: 5.1.1"));
  CHECK(contains(dsn, "queue lifetime"));
}

TEST_CASE("build_dsn: long diagnostics, huge headers and a colliding boundary stay well-formed") {
  DsnInput in = dsn_input();
  in.recipients[0].diagnostic =
      "smtp; 550 " + std::string(3000, 'z') + " " + std::string(500, 'w') + "\r\nInjected: yes";
  in.recipients[0].status = "bogus";
  std::string original = "X-Long: " + std::string(5000, 'h') + "\n";
  original += "X-Trap: --" + in.boundary + "\n";
  for (int i = 0; i < 2000; ++i) original += "X-Filler: " + std::string(60, 'f') + "\r\n";
  original += "\r\nbody\r\n";
  in.original = original;
  const std::string dsn = build_dsn(in);
  size_t pos = 0, longest = 0;
  while (pos < dsn.size()) {
    const size_t lf = dsn.find('\n', pos);
    REQUIRE(lf != std::string::npos);
    CHECK(dsn[lf - 1] == '\r');
    longest = std::max(longest, lf - 1 - pos);
    pos = lf + 1;
  }
  CHECK(longest <= 998);
  CHECK_FALSE(contains(dsn, "\r\nInjected: yes"));
  CHECK(contains(dsn, "Status: 5.0.0\r\n"));
  CHECK(dsn.size() < 64 * 1024 + 16 * 1024);
  // The boundary was changed so the trap line cannot end a part.
  CHECK_FALSE(contains(dsn, "boundary=\"0000000000001.s0/dsn\""));
}
