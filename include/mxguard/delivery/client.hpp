// The SMTP client protocol towards a customer's backend, as a pure state
// machine: the shard moves bytes, runs TLS and timers; this decides what to
// say and what each reply means for each recipient.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/result.hpp"

namespace mxguard::delivery {

// One server reply, possibly multi-line.
struct Reply {
  int code = 0;                    // 200..599
  std::string enhanced;            // "2.1.5" when the first line carries one, else ""
  std::vector<std::string> lines;  // each line's text after "NNN-" / "NNN "
  std::string text() const;        // lines joined with a space, for logs and DSNs
};

// Incremental reply parser. Bytes in, complete replies out.
class ReplyParser {
 public:
  // Appends every reply completed by `bytes` to `out`. An error (and the
  // parser stays failed) when the peer does not speak SMTP: a line without a
  // 3-digit code in 200..599 and a ' '/'-' separator (a bare "NNN" is allowed),
  // a continuation line whose code differs, a line over 4,096 octets, or a
  // reply of more than 128 lines.
  Status feed(std::string_view bytes, std::vector<Reply>& out);

 private:
  std::string line_;
  Reply partial_;
  bool failed_ = false;
};

// What a server announced in its EHLO reply (RFC 5321 4.1.1.1 and the
// extension RFCs). Empty after HELO.
struct Extensions {
  bool starttls = false;
  bool pipelining = false;
  bool size = false;
  uint64_t size_limit = 0;  // 0: SIZE announced without a limit
  bool eightbitmime = false;
  bool smtputf8 = false;
  bool enhanced_status_codes = false;
  bool auth = false;
  std::vector<std::string> auth_mechanisms;  // upper-case, e.g. "PLAIN"

  bool has_auth_mechanism(std::string_view name) const;
};

// Reads the keywords of a 2xx EHLO reply; the first line (the server's name)
// is not a keyword. Unknown keywords are ignored.
Extensions parse_ehlo(const Reply& ehlo);

// dot_stuff() in pieces: the state between feed() calls keeps a line start
// or a CR that ends one piece meaningful for the next.
class DotStuffer {
 public:
  void feed(std::string_view in, std::string& out);
  // Ends the last line if needed and appends the terminating "." CRLF.
  void finish(std::string& out);

 private:
  bool line_start_ = true;
  bool pending_cr_ = false;
};

enum class TlsPolicy : uint8_t { kNone, kMay, kEncrypt, kDane };

struct ClientJob {
  std::string helo;                     // our host name for EHLO/HELO
  std::string sender;                   // "" for the null reverse-path
  std::vector<std::string> recipients;  // at least one
  uint64_t size = 0;                    // octets of `message`, for SIZE=
  bool body_8bit = false;               // BODY=8BITMIME when offered
  bool smtputf8 = false;                // needs SMTPUTF8; a server without it fails the message
  TlsPolicy tls = TlsPolicy::kMay;
  bool implicit_tls = false;            // port 465: TLS is up before the greeting
  std::string auth_user;                // trust=auth when not empty
  std::string auth_password;
  bool probe = false;                   // callout: stop after the RCPT replies (MAIL FROM:<>), no DATA
  std::string_view message;             // CRLF lines, not dot-stuffed; must outlive the session
};

enum class Outcome : uint8_t { kDelivered, kDeferred, kFailed };

struct RcptResult {
  std::string recipient;
  Outcome outcome = Outcome::kDeferred;
  int code = 0;          // the server's reply code, 0 when none (connection, TLS, policy)
  std::string enhanced;  // e.g. "5.1.1"; synthesised for our own failures ("4.7.5" TLS, "4.4.2" lost)
  std::string text;      // the reply text or our reason, one line
};

class ClientSession {
 public:
  explicit ClientSession(ClientJob job);

  // Engine -> session.
  void receive(std::string_view plain);  // bytes from the server (already decrypted)
  void tls_established(bool verified);   // the handshake asked for by wants_tls() (or implicit TLS) completed
  void tls_failed(std::string_view why); // handshake or certificate/DANE check failed
  void connection_lost(std::string_view why);  // EOF, I/O error or timeout from the engine
  // Starts the next transaction on this connection (connection reuse) once
  // finished() && reusable(). Results are reset.
  void next(ClientJob job);
  // Sends QUIT (when the connection is usable) and ends the session.
  void quit();

  // Session -> engine.
  std::string& output() { return out_; }  // bytes to send; the engine takes and clears them
  // Message bytes are produced in pieces of about 256 KiB: after the engine
  // sent all of output(), it calls pump() to get the next piece.
  void pump();
  bool wants_tls() const;       // send output(), then run the client handshake and call tls_established/tls_failed
  bool finished() const;        // every recipient has a result
  bool reusable() const;        // finished, the connection is in a clean state for next()
  bool wants_close() const;     // the engine should close after sending output()
  const std::vector<RcptResult>& results() const { return results_; }
  const std::string& last_error() const;  // one line for logs, "" when none

 private:
  // Where the connection is; the transaction's own progress is in Transaction.
  enum class Phase : uint8_t { kGreeting, kHello, kStartTls, kHandshake, kAuth, kReady, kTransaction, kClosed };
  // A command sent whose reply has not arrived yet; replies come back in order.
  enum class Cmd : uint8_t {
    kGreeting, kEhlo, kHelo, kStartTls, kAuthPlain, kAuthLogin, kAuthUser, kAuthPassword,
    kMail, kRcpt, kData, kEndOfData, kRset,
  };
  struct Pending {
    Cmd cmd;
    size_t index = 0;  // recipient, for kRcpt
  };
  // One MAIL..end-of-data (or MAIL..RSET) exchange; reset by each job.
  struct Transaction {
    bool pipelined = false;
    bool mail_failed = false;
    size_t accepted = 0;      // RCPTs answered 2xx
    bool in_body = false;     // after 354, until the last piece is produced
    bool discarding = false;  // 354 without an accepted recipient: send only "."
    size_t body_pos = 0;
    DotStuffer stuffer;
  };

  void begin_job(ClientJob job);
  void on_reply(const Reply& r);
  void on_greeting(const Reply& r);
  void on_ehlo(const Reply& r);
  void on_helo(const Reply& r);
  void on_starttls(const Reply& r);
  void on_auth(const Reply& r, Cmd step);
  void on_mail(const Reply& r);
  void on_rcpt(const Reply& r, size_t i);
  void on_data(const Reply& r);
  void on_end_of_data(const Reply& r);
  void on_rset(const Reply& r);
  void on_unsolicited(const Reply& r);

  void send(std::string_view line, Cmd cmd, size_t index = 0);
  void send_hello();
  void after_hello();
  void start_auth();
  void start_transaction();
  void send_rcpt(size_t i);
  void after_rcpt(size_t i);
  void end_transaction_with_rset();
  void pump_body();

  void settle(size_t i, Outcome outcome, int code, std::string_view enhanced, std::string_view text);
  void settle_unfinished(Outcome outcome, int code, std::string_view enhanced, std::string_view text);
  void settle_accepted(Outcome outcome, int code, std::string_view enhanced, std::string_view text);
  void abort(std::string_view enhanced, std::string_view text, bool say_quit);
  void unexpected(const Reply& r, std::string_view what);
  void close();
  bool all_settled() const;
  bool usable() const;
  const char* activity() const;

  std::string out_;
  std::vector<RcptResult> results_;
  ClientJob job_;
  ReplyParser parser_;
  Extensions ext_;
  Phase phase_ = Phase::kGreeting;
  std::deque<Pending> pending_;
  std::vector<bool> settled_;
  std::vector<bool> accepted_;
  Transaction tx_;
  bool greeted_ = false;
  bool esmtp_ = false;
  bool tls_up_ = false;
  bool tls_verified_ = false;
  bool starttls_refused_ = false;
  std::string starttls_refusal_;  // the server's reply, for AUTH's reason
  bool authenticated_ = false;
  std::string authenticated_user_;
  std::string last_error_;
};

// Dot-stuffing of a message for DATA: every line starting with '.' gets
// another '.', bare LF become CRLF, the message ends with CRLF "." CRLF.
std::string dot_stuff(std::string_view message);

}  // namespace mxguard::delivery
