// Session state machine: scripted dialogues from tests/unit/dialogues/*.dlg
// (send this line, expect that reply), plus byte-at-a-time feeding.
#include <doctest.h>

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "mxguard/smtp/session.hpp"

using namespace mxguard;
using namespace mxguard::smtp;

namespace {

// Policy table standing in for the config store: the session only sees the decision.
class TestHost : public SessionHost {
 public:
  bool client_blocked(std::string_view ip) override { return ip == "192.0.2.66"; }
  SenderDecision check_sender(const Mailbox& s, std::string_view) override {
    if (s.domain == "spam.example") return SenderDecision::kBlocked;
    if (s.domain == "friend.example") return SenderDecision::kAllowlisted;
    return SenderDecision::kAccept;
  }
  RcptDecision check_recipient(const Mailbox& r, const Mailbox& sender, std::string_view) override {
    if (r.domain == "example.net" && sender.domain == "partner.example") return RcptDecision::kAcceptAllowlisted;
    if (r.domain == "example.net" && sender.domain == "rival.example") return RcptDecision::kBlocked;
    if (r.domain == "example.com" || r.domain == "example.net") {
      if (r.local == "nobody") return RcptDecision::kUnknownUser;
      return RcptDecision::kAccept;
    }
    if (r.domain == "suspended.example") return RcptDecision::kSuspended;
    if (r.domain == "broken.example") return RcptDecision::kTempFail;
    if (r.domain == "callout.example") return RcptDecision::kPending;
    return RcptDecision::kRelayDenied;  // unknown or pending
  }
  std::variant<Mailbox, RcptDecision> postmaster() override {
    if (postmaster_answer) return *postmaster_answer;
    return Mailbox{"postmaster", "example.com"};
  }
  std::optional<RcptDecision> postmaster_answer;  // set: there is no postmaster address
  std::string new_message_id() override { return "0000000000001.s0"; }
  int64_t now_ms() override { return 1'700'000'000'000; }
};

std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char e = s[++i];
      if (e == 'r') out += '\r';
      else if (e == 'n') out += '\n';
      else if (e == 't') out += '\t';
      else if (e == '0') out += '\0';
      else out += e;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Pops one complete reply (all lines up to "ddd ") from the output.
bool pop_reply(std::string& out, std::string& reply) {
  size_t pos = 0;
  while (true) {
    size_t eol = out.find("\r\n", pos);
    if (eol == std::string::npos) return false;
    bool last = eol - pos >= 4 && out[pos + 3] == ' ';
    bool bare_code = eol - pos == 3;
    pos = eol + 2;
    if (last || bare_code) break;
  }
  reply = out.substr(0, pos);
  out.erase(0, pos);
  return true;
}

std::string last_line(const std::string& reply) {
  size_t end = reply.size() - 2;
  size_t start = reply.rfind("\r\n", end - 1);
  return reply.substr(start == std::string::npos ? 0 : start + 2, end - (start == std::string::npos ? 0 : start + 2));
}

// The client's content: the stored data minus our (folded) Received header.
std::string strip_received(const std::string& data) {
  size_t pos = 0;
  while (true) {
    size_t eol = data.find("\r\n", pos);
    pos = eol + 2;
    if (pos >= data.size() || (data[pos] != ' ' && data[pos] != '\t')) return data.substr(pos);
  }
}

void run_dialogue(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  SmtpConfig limits;
  SessionParams params;
  params.hostname = "mx.test";
  params.limits = &limits;
  TestHost host;
  std::unique_ptr<Session> s;
  std::vector<std::unique_ptr<FinishedMessage>> stored;
  std::string out;
  std::string client_ip = "192.0.2.7";
  bool banner = true;

  auto pump = [&] {
    out += s->output();
    s->output().clear();
    if (auto m = s->take_message()) stored.push_back(std::move(m));
  };
  auto ensure = [&] {
    if (s) return;
    s = std::make_unique<Session>(params, host, ClientInfo{client_ip, 40000});
    if (banner) s->start();
    pump();
  };

  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    CAPTURE(path);
    CAPTURE(lineno);
    CAPTURE(line);
    if (line.rfind("!set ", 0) == 0) {
      std::string kv = line.substr(5);
      std::string key = kv.substr(0, kv.find('='));
      uint64_t v = std::stoull(kv.substr(kv.find('=') + 1));
      if (key == "max_recipients") limits.max_recipients = static_cast<unsigned>(v);
      else if (key == "max_errors") limits.max_errors = static_cast<unsigned>(v);
      else if (key == "max_junk_commands") limits.max_junk_commands = static_cast<unsigned>(v);
      else if (key == "max_message_size") limits.max_message_size = v;
      else if (key == "max_line_length") limits.max_line_length = v;
      else if (key == "tls") params.tls_available = v != 0;
      else if (key == "banner") banner = v != 0;
      else if (key == "postmaster") {
        // 1: the host names one; 0: there is none; 2: its lookup failed.
        if (v == 1) host.postmaster_answer.reset();
        else host.postmaster_answer = v == 0 ? RcptDecision::kUnknownUser : RcptDecision::kTempFail;
      }
      else FAIL("unknown !set key");
      continue;
    }
    if (line.rfind("!client ", 0) == 0) {
      client_ip = line.substr(8);
      continue;
    }
    ensure();
    if (line.rfind(">> ", 0) == 0) {
      s->receive(unescape(line.substr(3)));
      pump();
    } else if (line == ">" || line.rfind("> ", 0) == 0) {
      s->receive(line.substr(std::min<size_t>(2, line.size())) + "\r\n");
      pump();
    } else if (line.rfind("<* ", 0) == 0) {
      std::string reply;
      REQUIRE_MESSAGE(pop_reply(out, reply), "expected a reply");
      CHECK_MESSAGE(reply.find(line.substr(3)) != std::string::npos, reply);
    } else if (line.rfind("< ", 0) == 0) {
      std::string reply;
      REQUIRE_MESSAGE(pop_reply(out, reply), "expected a reply");
      CHECK_MESSAGE(last_line(reply).rfind(line.substr(2), 0) == 0, reply);
    } else if (line == "!noreply") {
      CHECK_MESSAGE(out.empty(), out);
    } else if (line == "!closed") {
      CHECK(s->wants_close());
    } else if (line == "!open") {
      CHECK_FALSE(s->wants_close());
    } else if (line == "!start") {
      s->start();
      pump();
    } else if (line == "!commit ok" || line == "!commit fail") {
      CHECK(s->awaiting_commit());
      s->commit_done(line == "!commit ok");
      pump();
    } else if (line.rfind("!stored ", 0) == 0) {
      REQUIRE_MESSAGE(!stored.empty(), "expected a finished message");
      CHECK(strip_received(stored.back()->data) == unescape(line.substr(8)));
    } else if (line.rfind("!recipients ", 0) == 0) {
      REQUIRE(!stored.empty());
      std::string joined;
      for (const auto& r : stored.back()->envelope.recipients) joined += (joined.empty() ? "" : ",") + r;
      CHECK(joined == line.substr(12));
    } else if (line.rfind("!subject ", 0) == 0) {
      REQUIRE(!stored.empty());
      CHECK(stored.back()->envelope.subject == line.substr(9));
    } else if (line.rfind("!allowlisted ", 0) == 0) {
      REQUIRE(!stored.empty());
      std::string joined;
      for (const auto& r : stored.back()->envelope.allowlisted) joined += (joined.empty() ? "" : ",") + r;
      CHECK(joined == line.substr(13));
    } else if (line.rfind("!client ", 0) == 0) {
      client_ip = line.substr(8);
    } else if (line == "!nostored") {
      CHECK(stored.empty());
    } else if (line == "!starttls") {
      CHECK(s->wants_starttls());
    } else if (line == "!tls-started") {
      s->tls_started(TlsInfo{"TLSv1.3", "TLS_AES_256_GCM_SHA384", 256});
      pump();
    } else if (line == "!timeout") {
      s->timeout();
      pump();
    } else if (line == "!shutdown") {
      s->shutting_down();
      pump();
    } else if (line.rfind("!received-has ", 0) == 0) {
      REQUIRE(!stored.empty());
      CHECK_MESSAGE(stored.back()->data.find(line.substr(14)) < stored.back()->data.find("\r\n\r\n"),
                    stored.back()->data);
    } else {
      FAIL("bad dialogue directive");
    }
  }
  std::string leftover = "unchecked replies left: " + out;
  CHECK_MESSAGE(out.empty(), leftover);
}

}  // namespace

TEST_CASE("session: scripted dialogues") {
  std::vector<std::string> files;
  DIR* d = opendir("unit/dialogues");
  REQUIRE(d);
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 4 && n.substr(n.size() - 4) == ".dlg") files.push_back("unit/dialogues/" + n);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  CHECK(files.size() >= 8);
  for (const auto& f : files) {
    SUBCASE(f.c_str()) { run_dialogue(f); }
  }
}

TEST_CASE("session: a pipelined transaction fed one byte at a time") {
  SmtpConfig limits;
  SessionParams params{"mx.test", &limits, false};
  TestHost host;
  Session s(params, host, ClientInfo{"192.0.2.7", 1});
  s.start();
  const std::string wire =
      "EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n"
      "Subject: hi\r\n\r\nbody\r\n..dot\r\n.\r\nQUIT\r\n";
  std::unique_ptr<FinishedMessage> msg;
  for (char c : wire) {
    s.receive(std::string_view(&c, 1));
    if (auto m = s.take_message()) msg = std::move(m);
  }
  REQUIRE(msg);
  CHECK(s.awaiting_commit());
  CHECK(strip_received(msg->data) == "Subject: hi\r\n\r\nbody\r\n.dot\r\n");
  CHECK(msg->envelope.subject == "hi");
  CHECK(msg->envelope.sender == "a@c.example");
  // QUIT waits behind the commit: the 250 must come before the 221.
  CHECK(s.output().find("221") == std::string::npos);
  s.commit_done(true);
  std::string out = s.output();
  CHECK(out.find("250 2.0.0 Ok: queued as") < out.find("221 2.0.0"));
  CHECK(s.wants_close());
}

TEST_CASE("session: a RCPT waiting for a callout holds the pipelined commands behind it") {
  SmtpConfig limits;
  SessionParams params{"mx.test", &limits, false};
  TestHost host;
  for (RcptDecision answer : {RcptDecision::kAccept, RcptDecision::kUnknownUser, RcptDecision::kCalloutDown}) {
    CAPTURE(static_cast<int>(answer));
    Session s(params, host, ClientInfo{"192.0.2.7", 1});
    s.start();
    s.receive("EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<u@callout.example>\r\n"
              "RCPT TO:<v@example.com>\r\nDATA\r\n");
    std::string out = s.output();
    s.output().clear();
    CHECK(s.rcpt_pending());
    CHECK(out.find("250 2.1.0") != std::string::npos);  // MAIL answered
    CHECK(out.find("2.1.5") == std::string::npos);      // nothing after the waiting RCPT
    s.rcpt_resolved(answer);
    CHECK_FALSE(s.rcpt_pending());
    out = s.output();
    std::string first;
    REQUIRE(pop_reply(out, first));
    if (answer == RcptDecision::kAccept) CHECK(first.rfind("250 2.1.5", 0) == 0);
    if (answer == RcptDecision::kUnknownUser) CHECK(first.rfind("550 5.1.1", 0) == 0);
    if (answer == RcptDecision::kCalloutDown) CHECK(first.rfind("450 4.4.1", 0) == 0);
    std::string second, third;
    REQUIRE(pop_reply(out, second));
    CHECK(second.rfind("250 2.1.5", 0) == 0);  // the next RCPT ran after the answer
    REQUIRE(pop_reply(out, third));
    CHECK(third.rfind("354", 0) == 0);
  }
  // A late answer after the client left is ignored.
  Session gone(params, host, ClientInfo{"192.0.2.7", 1});
  gone.start();
  gone.receive("EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<u@callout.example>\r\n");
  gone.timeout();
  gone.rcpt_resolved(RcptDecision::kAccept);
  CHECK(gone.output().find("2.1.5") == std::string::npos);
}

TEST_CASE("session: summary headers are unfolded and bounded") {
  std::string subject, mid;
  extract_summary_headers("From: a\r\nSubject: one\r\n two\r\nMessage-ID: <x@y>\r\n\r\nSubject: body\r\n", subject,
                          mid);
  CHECK(subject == "one two");
  CHECK(mid == "<x@y>");
  subject.clear();
  mid.clear();
  extract_summary_headers("X: y\r\n\r\n", subject, mid);
  CHECK(subject.empty());
}

TEST_CASE("session: RFC 5322 dates") {
  CHECK(rfc5322_date(0) == "Thu, 1 Jan 1970 00:00:00 +0000");
  CHECK(rfc5322_date(1'700'000'000'000) == "Tue, 14 Nov 2023 22:13:20 +0000");
}

TEST_CASE("session: every refusal it sends is reported to the host, named") {
  struct Recording : TestHost {
    struct Seen {
      std::string decision, sender, recipient, id;
      int code;
    };
    std::vector<Seen> seen;
    void refused(const Refusal& r) override {
      seen.push_back({std::string(r.decision), std::string(r.sender), std::string(r.recipient),
                      std::string(r.ref), r.code});
    }
  };
  SmtpConfig limits;
  SessionParams params{"mx.test", &limits, false};
  Recording host;
  Session s(params, host, ClientInfo{"192.0.2.7", 1});
  s.start();
  s.receive("EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<x@elsewhere.example>\r\n"
            "RCPT TO:<nobody@example.com>\r\nRCPT TO:<y@suspended.example>\r\nRCPT TO:<z%elsewhere@example.com>\r\n"
            "RCPT TO:<bad address>\r\nRSET\r\nMAIL FROM:<b@spam.example>\r\nMAIL FROM:<a@c.example>\r\n"
            "RCPT TO:<u@example.com>\r\nDATA\r\nSubject: x\nbare\r\n.\r\nNOOP\r\n");
  REQUIRE(host.seen.size() == 7);
  CHECK(host.seen[0].decision == "relay_denied");
  CHECK(host.seen[0].recipient == "x@elsewhere.example");
  CHECK(host.seen[0].sender == "a@c.example");
  CHECK(host.seen[0].code == 550);
  CHECK(host.seen[1].decision == "unknown_recipient");
  CHECK(host.seen[2].decision == "suspended");
  CHECK(host.seen[2].code == 450);
  CHECK(host.seen[3].decision == "relay_denied");  // relay characters, before any lookup
  CHECK(host.seen[4].decision == "protocol_error");
  CHECK(host.seen[4].code == 501);
  CHECK(host.seen[5].decision == "blocked");
  CHECK(host.seen[5].sender == "b@spam.example");
  CHECK(host.seen[6].decision == "bad_content");  // the bare LF
  CHECK(host.seen[6].sender == "a@c.example");
  CHECK(host.seen[6].id == "0000000000001.s0");
  // A verdict's refusal is the host's own decision: not reported back.
  Session v(params, host, ClientInfo{"192.0.2.8", 1});
  v.start();
  v.receive("EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<u@example.com>\r\nDATA\r\nhi\r\n.\r\n");
  REQUIRE(v.take_message());
  v.message_refused(550, "5.7.1", "rejected");
  CHECK(host.seen.size() == 7);
  CHECK(v.output().find("550 5.7.1 rejected") != std::string::npos);
}
