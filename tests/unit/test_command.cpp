// Command tokenizer and reply formatting.
#include <doctest.h>

#include "mxguard/smtp/command.hpp"
#include "mxguard/smtp/reply.hpp"

using namespace mxguard::smtp;

TEST_CASE("command: verbs are case-insensitive and args are trimmed") {
  struct Case {
    const char* line;
    Verb verb;
    const char* args;
  } cases[] = {
      {"EHLO client.example", Verb::kEhlo, "client.example"},
      {"ehlo   client.example  ", Verb::kEhlo, "client.example"},
      {"HeLo x", Verb::kHelo, "x"},
      {"MAIL FROM:<a@b.c> SIZE=10", Verb::kMail, "FROM:<a@b.c> SIZE=10"},
      {"RCPT TO:<a@b.c>", Verb::kRcpt, "TO:<a@b.c>"},
      {"DATA", Verb::kData, ""},
      {"BDAT 100 LAST", Verb::kBdat, "100 LAST"},
      {"RSET", Verb::kRset, ""},
      {"NOOP whatever", Verb::kNoop, "whatever"},
      {"QUIT", Verb::kQuit, ""},
      {"VRFY bob", Verb::kVrfy, "bob"},
      {"EXPN list", Verb::kExpn, "list"},
      {"HELP", Verb::kHelp, ""},
      {"STARTTLS", Verb::kStarttls, ""},
      {"AUTH PLAIN", Verb::kAuth, "PLAIN"},
      {"GET / HTTP/1.0", Verb::kHttp, "/ HTTP/1.0"},
      {"POST /x HTTP/1.1", Verb::kHttp, "/x HTTP/1.1"},
      {"CONNECT host:25 HTTP/1.1", Verb::kHttp, "host:25 HTTP/1.1"},
      {"MAILFROM:<a@b>", Verb::kUnknown, ""},
      {"", Verb::kUnknown, ""},
      {"\tDATA", Verb::kUnknown, "DATA"},
      {"XYZZY", Verb::kUnknown, ""},
      {"DATA\t", Verb::kData, ""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.line);
    Command cmd = parse_command(c.line);
    CHECK(cmd.verb == c.verb);
    CHECK(cmd.args == c.args);
  }
}

TEST_CASE("reply: single and multiline formatting, control bytes neutralised") {
  std::string out;
  append_reply(out, 250, "2.1.0", "Ok");
  CHECK(out == "250 2.1.0 Ok\r\n");
  out.clear();
  append_reply(out, 220, "", "mx ESMTP");
  CHECK(out == "220 mx ESMTP\r\n");
  out.clear();
  append_reply(out, 550, "5.7.1", "<a\r\n250 ok>: denied");
  CHECK(out == "550 5.7.1 <a??250 ok>: denied\r\n");
  out.clear();
  append_multiline(out, 250, {"mx Hello", "PIPELINING", "SIZE 10"});
  CHECK(out == "250-mx Hello\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
}
