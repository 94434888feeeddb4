// The SMTP client session towards a backend (RFC 5321 with STARTTLS, AUTH,
// PIPELINING, SIZE, 8BITMIME, SMTPUTF8): replies in, commands and verdicts out.
#include <fmt/format.h>

#include <algorithm>

#include "internal.hpp"
#include "mxguard/delivery/client.hpp"

namespace mxguard::delivery {

namespace {

constexpr size_t kPiece = 256 * 1024;  // message bytes per pump()

int reply_class(int code) { return code / 100; }

// Our deferral keeps the server's subject and detail but must say "temporary".
std::string temporary(std::string_view enhanced, std::string_view fallback) {
  if (enhanced.size() >= 5) return "4" + std::string(enhanced.substr(1));
  return std::string(fallback);
}

// "550 5.1.1 no such user", for reasons and logs.
std::string quote(const Reply& r) {
  std::string text = r.text();
  return text.empty() ? fmt::format("{}", r.code) : fmt::format("{} {}", r.code, text);
}

Outcome outcome_of(int code) { return reply_class(code) == 5 ? Outcome::kFailed : Outcome::kDeferred; }

// A path that cannot end the command line early and smuggle in another
// command (spaces stay: a quoted local part may hold them).
bool safe_path(std::string_view path) {
  return std::none_of(path.begin(), path.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

}  // namespace

ClientSession::ClientSession(ClientJob job) {
  begin_job(std::move(job));
  // With implicit TLS the engine has the handshake done before any byte
  // arrives; whether the certificate checked out comes via tls_established().
  tls_up_ = job_.implicit_tls;
  pending_.push_back({Cmd::kGreeting});
}

const std::string& ClientSession::last_error() const { return last_error_; }
bool ClientSession::wants_tls() const { return phase_ == Phase::kHandshake; }
bool ClientSession::wants_close() const { return phase_ == Phase::kClosed; }

// "Finished" means at rest as well as settled, so that reusable() is already
// decided when finished() turns true (an RSET in flight is waited for).
bool ClientSession::finished() const {
  return all_settled() && (phase_ == Phase::kReady || phase_ == Phase::kClosed);
}

bool ClientSession::reusable() const { return phase_ == Phase::kReady && all_settled(); }

bool ClientSession::all_settled() const {
  return std::all_of(settled_.begin(), settled_.end(), [](bool b) { return b; });
}

void ClientSession::begin_job(ClientJob job) {
  job_ = std::move(job);
  tx_ = Transaction{};
  last_error_.clear();
  results_.clear();
  results_.reserve(job_.recipients.size());
  for (const std::string& r : job_.recipients) results_.push_back(RcptResult{.recipient = r});
  settled_.assign(job_.recipients.size(), false);
  accepted_.assign(job_.recipients.size(), false);
}

// --- engine events -----------------------------------------------------------

void ClientSession::receive(std::string_view plain) {
  // During the handshake nothing in plaintext may count: a man in the middle
  // could have queued replies behind the 220 (the STARTTLS injection attack).
  if (phase_ == Phase::kClosed || phase_ == Phase::kHandshake) return;
  std::vector<Reply> replies;
  Status parsed = parser_.feed(plain, replies);
  for (const Reply& r : replies) {
    if (phase_ == Phase::kClosed || phase_ == Phase::kHandshake) return;
    on_reply(r);
  }
  if (!parsed.ok() && phase_ != Phase::kClosed && phase_ != Phase::kHandshake) {
    settle_unfinished(Outcome::kDeferred, 0, "4.5.0", "backend sent a malformed reply");
    last_error_ = "backend sent a malformed reply: " + parsed.error();
    close();
  }
}

void ClientSession::tls_established(bool verified) {
  const bool after_starttls = phase_ == Phase::kHandshake;
  const bool implicit_start = job_.implicit_tls && !greeted_ && phase_ == Phase::kGreeting;
  // Anything else is an engine bug; believing it could send AUTH in clear.
  if (!after_starttls && !implicit_start) return;
  tls_up_ = true;
  tls_verified_ = verified;
  parser_ = ReplyParser{};
  if (after_starttls) phase_ = Phase::kHello;
  if (job_.tls == TlsPolicy::kDane && !verified) {
    abort("4.7.5", "DANE TLSA verification failed for the backend's certificate", after_starttls);
    return;
  }
  if (after_starttls) {
    // RFC 3207 4.2: what the server said before TLS is forgotten.
    ext_ = Extensions{};
    send_hello();
  }
}

void ClientSession::tls_failed(std::string_view why) {
  if (phase_ == Phase::kClosed) return;
  abort("4.7.5", "TLS handshake with the backend failed: " + one_line(why), false);
}

void ClientSession::connection_lost(std::string_view why) {
  if (phase_ == Phase::kClosed) return;
  const std::string text = fmt::format("lost connection with backend while {}: {}", activity(), one_line(why));
  if (!all_settled()) last_error_ = text;
  settle_unfinished(Outcome::kDeferred, 0, "4.4.2", text);
  close();
}

void ClientSession::next(ClientJob job) {
  const bool was_reusable = reusable();
  begin_job(std::move(job));
  if (!was_reusable) {
    // An engine bug; replies still in flight would be matched against the
    // wrong job, so the connection is given up.
    settle_unfinished(Outcome::kDeferred, 0, "4.3.0", "the backend connection is not reusable");
    last_error_ = "next() on a connection that is not reusable";
    close();
    return;
  }
  // A connection set up for another job may not meet this one's demands; the
  // recipients are deferred and the connection stays usable for others.
  std::string why;
  if ((job_.tls == TlsPolicy::kEncrypt || job_.tls == TlsPolicy::kDane) && !tls_up_)
    why = "TLS required by policy but the connection is not encrypted";
  else if (job_.tls == TlsPolicy::kDane && !tls_verified_)
    why = "DANE required but the connection was not verified";
  else if (!job_.auth_user.empty() && (!authenticated_ || job_.auth_user != authenticated_user_))
    why = "AUTH required but the connection is not authenticated as this user";
  if (!why.empty()) {
    settle_unfinished(Outcome::kDeferred, 0, "4.3.0", "connection not reusable for this job: " + why);
    last_error_ = "connection not reusable for this job: " + why;
    return;
  }
  start_transaction();
}

void ClientSession::quit() {
  if (phase_ == Phase::kClosed) return;
  settle_unfinished(Outcome::kDeferred, 0, "4.3.0", "delivery stopped before the backend answered");
  if (usable()) out_.append("QUIT\r\n");
  close();
}

void ClientSession::pump() {
  if (phase_ == Phase::kTransaction) pump_body();
}

// --- replies -------------------------------------------------------------------

void ClientSession::on_reply(const Reply& r) {
  if (pending_.empty()) {
    on_unsolicited(r);
    return;
  }
  const char* doing = activity();
  const Pending p = pending_.front();
  pending_.pop_front();
  // 421 means the server is closing whatever it was asked (RFC 5321 3.8).
  if (r.code == 421 && p.cmd != Cmd::kGreeting) {
    abort(temporary(r.enhanced, "4.3.0"), fmt::format("backend closed the session while {}: {}", doing, quote(r)),
          false);
    return;
  }
  switch (p.cmd) {
    case Cmd::kGreeting: on_greeting(r); break;
    case Cmd::kEhlo: on_ehlo(r); break;
    case Cmd::kHelo: on_helo(r); break;
    case Cmd::kStartTls: on_starttls(r); break;
    case Cmd::kAuthPlain:
    case Cmd::kAuthLogin:
    case Cmd::kAuthUser:
    case Cmd::kAuthPassword: on_auth(r, p.cmd); break;
    case Cmd::kMail: on_mail(r); break;
    case Cmd::kRcpt: on_rcpt(r, p.index); break;
    case Cmd::kData: on_data(r); break;
    case Cmd::kEndOfData: on_end_of_data(r); break;
    case Cmd::kRset: on_rset(r); break;
  }
}

void ClientSession::on_greeting(const Reply& r) {
  greeted_ = true;  // even a refusal is a greeting: the server now reads commands
  if (reply_class(r.code) != 2) {
    // RFC 5321 3.1: a refusing server still expects QUIT.
    abort(temporary(r.enhanced, "4.3.0"), "backend refused the session: " + quote(r), true);
    return;
  }
  if (job_.implicit_tls && job_.tls == TlsPolicy::kDane && !tls_verified_) {
    abort("4.7.5", "DANE TLSA verification failed for the backend's certificate", true);
    return;
  }
  send_hello();
}

void ClientSession::on_ehlo(const Reply& r) {
  switch (reply_class(r.code)) {
    case 2:
      ext_ = parse_ehlo(r);
      esmtp_ = true;
      after_hello();
      return;
    case 5:
      // An old server or one that dislikes EHLO: plain RFC 821 it is.
      send(fmt::format("HELO {}", one_line(job_.helo)), Cmd::kHelo);
      return;
    case 4: abort(temporary(r.enhanced, "4.3.0"), "backend rejected EHLO: " + quote(r), true); return;
    default: unexpected(r, "EHLO");
  }
}

void ClientSession::on_helo(const Reply& r) {
  if (reply_class(r.code) == 2) {
    ext_ = Extensions{};
    esmtp_ = false;
    after_hello();
  } else if (reply_class(r.code) == 3) {
    unexpected(r, "HELO");
  } else {
    abort(temporary(r.enhanced, "4.3.0"), "backend rejected HELO: " + quote(r), true);
  }
}

void ClientSession::on_starttls(const Reply& r) {
  if (reply_class(r.code) == 2) {
    phase_ = Phase::kHandshake;
    return;
  }
  if (reply_class(r.code) == 3) {
    unexpected(r, "STARTTLS");
    return;
  }
  if (job_.tls == TlsPolicy::kEncrypt || job_.tls == TlsPolicy::kDane) {
    abort("4.7.4", "TLS required by policy but the backend refused STARTTLS: " + quote(r), true);
    return;
  }
  // Opportunistic TLS: a refusal leaves the session as it was, in clear.
  starttls_refused_ = true;
  starttls_refusal_ = quote(r);
  after_hello();
}

void ClientSession::on_auth(const Reply& r, Cmd step) {
  if (reply_class(r.code) == 2) {
    authenticated_ = true;
    authenticated_user_ = job_.auth_user;
    after_hello();
    return;
  }
  if (r.code == 334 && step == Cmd::kAuthLogin) {
    send(base64_encode(job_.auth_user), Cmd::kAuthUser);
    return;
  }
  if (r.code == 334 && step == Cmd::kAuthUser) {
    send(base64_encode(job_.auth_password), Cmd::kAuthPassword);
    return;
  }
  // Never the password: only the user name and what the server said.
  // A stray 334 leaves the server waiting for SASL data, so no QUIT then.
  abort(temporary(r.enhanced, "4.7.0"),
        fmt::format("authentication failed for user {}: {}", one_line(job_.auth_user), quote(r)),
        reply_class(r.code) != 3);
}

void ClientSession::on_mail(const Reply& r) {
  const int k = reply_class(r.code);
  if (k == 2) {
    if (!tx_.pipelined) after_rcpt(SIZE_MAX);
    return;
  }
  if (k == 3) {
    unexpected(r, "MAIL FROM");
    return;
  }
  tx_.mail_failed = true;
  settle_unfinished(outcome_of(r.code), r.code, r.enhanced, r.text());
  last_error_ = fmt::format("MAIL FROM:<{}> rejected: {}", one_line(job_.probe ? "" : job_.sender), quote(r));
  // Pipelined, the RCPT and DATA replies still to come are answered to a
  // transaction that never started; they are read and ignored.
  if (!tx_.pipelined) end_transaction_with_rset();
}

void ClientSession::on_rcpt(const Reply& r, size_t i) {
  if (!tx_.mail_failed) {
    const int k = reply_class(r.code);
    if (k == 3) {
      unexpected(r, "RCPT TO");
      return;
    }
    if (k == 2) {
      accepted_[i] = true;
      ++tx_.accepted;
      // A callout only asks whether the mailbox exists; this is the answer.
      if (job_.probe) settle(i, Outcome::kDelivered, r.code, r.enhanced, r.text());
    } else {
      settle(i, outcome_of(r.code), r.code, r.enhanced, r.text());
      last_error_ = fmt::format("RCPT TO:<{}> rejected: {}", one_line(job_.recipients[i]), quote(r));
    }
  }
  if (!tx_.pipelined) after_rcpt(i);
}

void ClientSession::on_data(const Reply& r) {
  const bool have_recipients = tx_.accepted > 0 && !tx_.mail_failed;
  if (r.code == 354) {
    if (!have_recipients) {
      // A server that says 354 with nobody to deliver to still needs the
      // data ended; an empty body does it, and its reply is ignored.
      tx_.discarding = true;
      send(".", Cmd::kEndOfData);
      return;
    }
    tx_.in_body = true;
    tx_.body_pos = 0;
    tx_.stuffer = DotStuffer{};
    pump_body();
    return;
  }
  if (!have_recipients) {
    // The 503/554 RFC 2920 predicts after a pipelined DATA without recipients.
    end_transaction_with_rset();
    return;
  }
  if (reply_class(r.code) != 4 && reply_class(r.code) != 5) {
    unexpected(r, "DATA");
    return;
  }
  settle_accepted(outcome_of(r.code), r.code, r.enhanced, r.text());
  last_error_ = "DATA rejected: " + quote(r);
  end_transaction_with_rset();
}

void ClientSession::on_end_of_data(const Reply& r) {
  if (tx_.discarding) {
    end_transaction_with_rset();
    return;
  }
  const int k = reply_class(r.code);
  if (k == 3) {
    unexpected(r, "the end of data");
    return;
  }
  if (k == 2) {
    settle_accepted(Outcome::kDelivered, r.code, r.enhanced, r.text());
  } else {
    settle_accepted(outcome_of(r.code), r.code, r.enhanced, r.text());
    last_error_ = "message rejected after end of data: " + quote(r);
  }
  // The end-of-data reply ends the transaction whatever it says (RFC 5321 4.1.1.4).
  phase_ = Phase::kReady;
}

void ClientSession::on_rset(const Reply& r) {
  if (reply_class(r.code) != 2) {
    abort(temporary(r.enhanced, "4.3.0"), "backend refused RSET: " + quote(r), reply_class(r.code) != 3);
    return;
  }
  if (pending_.empty()) {
    // Pipelined replies are all in; anything still open got no answer.
    settle_unfinished(Outcome::kDeferred, 0, "4.5.0", "backend gave no reply for this recipient");
    phase_ = Phase::kReady;
  }
}

void ClientSession::on_unsolicited(const Reply& r) {
  if (tx_.in_body) {
    // The server gave up on the message while we were still sending it.
    tx_.in_body = false;
    if (reply_class(r.code) == 5)
      settle_accepted(Outcome::kFailed, r.code, r.enhanced, r.text());
    else
      settle_accepted(Outcome::kDeferred, reply_class(r.code) == 4 ? r.code : 0, temporary(r.enhanced, ""), r.text());
    last_error_ = "backend replied before the end of data: " + quote(r);
    abort("4.5.0", last_error_, false);
    return;
  }
  if (r.code == 421) {
    abort(temporary(r.enhanced, "4.3.0"), "backend closed the session: " + quote(r), false);
    return;
  }
  abort("4.5.0", "backend sent a reply nobody asked for: " + quote(r), false);
}

// --- what to say next --------------------------------------------------------------

void ClientSession::send(std::string_view line, Cmd cmd, size_t index) {
  out_.append(line);
  out_.append("\r\n");
  pending_.push_back({cmd, index});
}

void ClientSession::send_hello() {
  phase_ = Phase::kHello;
  send(fmt::format("EHLO {}", one_line(job_.helo)), Cmd::kEhlo);
}

void ClientSession::after_hello() {
  const bool tls_required = job_.tls == TlsPolicy::kEncrypt || job_.tls == TlsPolicy::kDane;
  if (!tls_up_ && job_.tls != TlsPolicy::kNone && ext_.starttls && !starttls_refused_) {
    phase_ = Phase::kStartTls;
    send("STARTTLS", Cmd::kStartTls);
    return;
  }
  if (!tls_up_ && tls_required) {
    abort("4.7.4",
          esmtp_ ? "TLS required by policy but the server does not offer STARTTLS"
                 : "TLS required by policy but the server does not support EHLO (no STARTTLS)",
          true);
    return;
  }
  if (!job_.auth_user.empty() && !authenticated_) {
    start_auth();
    return;
  }
  phase_ = Phase::kReady;
  start_transaction();
}

void ClientSession::start_auth() {
  if (!tls_up_) {
    // Credentials never travel in clear, whatever the TLS policy says.
    std::string why;
    if (job_.tls == TlsPolicy::kNone) why = "the TLS policy is none";
    else if (starttls_refused_) why = "the backend refused STARTTLS: " + starttls_refusal_;
    else if (!esmtp_) why = "the backend does not support EHLO";
    else why = "the backend did not offer STARTTLS";
    abort("4.7.4", "AUTH requires TLS; " + why, true);
    return;
  }
  if (!ext_.auth) {
    abort("4.7.4", "AUTH required but the backend does not offer AUTH", true);
    return;
  }
  phase_ = Phase::kAuth;
  if (ext_.has_auth_mechanism("PLAIN")) {
    // RFC 4616: authorisation id (empty), user, password, NUL-separated.
    std::string creds;
    creds.push_back('\0');
    creds.append(job_.auth_user);
    creds.push_back('\0');
    creds.append(job_.auth_password);
    send("AUTH PLAIN " + base64_encode(creds), Cmd::kAuthPlain);
  } else if (ext_.has_auth_mechanism("LOGIN")) {
    send("AUTH LOGIN", Cmd::kAuthLogin);
  } else {
    std::string offered;
    for (const std::string& m : ext_.auth_mechanisms) offered += (offered.empty() ? "" : " ") + m;
    abort("4.7.4", fmt::format("AUTH required but the backend offers neither PLAIN nor LOGIN ({})", one_line(offered)),
          true);
  }
}

void ClientSession::start_transaction() {
  tx_ = Transaction{};
  const bool sender_ok = job_.probe || safe_path(job_.sender);
  for (size_t i = 0; i < job_.recipients.size(); ++i) {
    if (!sender_ok) settle(i, Outcome::kFailed, 0, "5.1.7", "sender address unusable in an SMTP command");
    else if (job_.recipients[i].empty() || !safe_path(job_.recipients[i]))
      settle(i, Outcome::kFailed, 0, "5.1.3", "recipient address unusable in an SMTP command");
  }
  if (job_.smtputf8 && !ext_.smtputf8) {
    settle_unfinished(Outcome::kFailed, 0, "5.6.7", "the message needs SMTPUTF8 but the backend does not support it");
    last_error_ = "the message needs SMTPUTF8 but the backend does not support it";
  }
  if (!job_.probe && ext_.size_limit != 0 && job_.size > ext_.size_limit) {
    last_error_ = fmt::format("message of {} octets exceeds the backend's SIZE limit of {}", job_.size,
                              ext_.size_limit);
    settle_unfinished(Outcome::kFailed, 0, "5.3.4", last_error_);
  }
  if (all_settled()) {
    phase_ = Phase::kReady;
    return;
  }

  phase_ = Phase::kTransaction;
  tx_.pipelined = ext_.pipelining;
  std::string mail = fmt::format("MAIL FROM:<{}>", job_.probe ? "" : job_.sender);
  if (!job_.probe) {
    if (ext_.size) mail += fmt::format(" SIZE={}", job_.size);
    if (job_.body_8bit && ext_.eightbitmime) mail += " BODY=8BITMIME";
  }
  if (job_.smtputf8) mail += " SMTPUTF8";
  send(mail, Cmd::kMail);
  if (!tx_.pipelined) return;
  // RFC 2920: MAIL, every RCPT and DATA (or a callout's RSET) in one group;
  // the replies are matched back in order.
  for (size_t i = 0; i < job_.recipients.size(); ++i)
    if (!settled_[i]) send_rcpt(i);
  if (job_.probe) send("RSET", Cmd::kRset);
  else send("DATA", Cmd::kData);
}

void ClientSession::send_rcpt(size_t i) { send(fmt::format("RCPT TO:<{}>", job_.recipients[i]), Cmd::kRcpt, i); }

// Lock-step: after MAIL (i = SIZE_MAX) or RCPT i, the next RCPT, else DATA or RSET.
void ClientSession::after_rcpt(size_t i) {
  for (size_t j = i == SIZE_MAX ? 0 : i + 1; j < job_.recipients.size(); ++j) {
    if (!settled_[j]) {
      send_rcpt(j);
      return;
    }
  }
  if (!job_.probe && tx_.accepted > 0) send("DATA", Cmd::kData);
  else end_transaction_with_rset();
}

void ClientSession::end_transaction_with_rset() { send("RSET", Cmd::kRset); }

void ClientSession::pump_body() {
  if (!tx_.in_body || out_.size() >= kPiece) return;
  const size_t n = std::min(kPiece, job_.message.size() - tx_.body_pos);
  tx_.stuffer.feed(job_.message.substr(tx_.body_pos, n), out_);
  tx_.body_pos += n;
  if (tx_.body_pos == job_.message.size()) {
    tx_.stuffer.finish(out_);
    tx_.in_body = false;
    pending_.push_back({Cmd::kEndOfData});
  }
}

// --- verdicts ------------------------------------------------------------------

void ClientSession::settle(size_t i, Outcome outcome, int code, std::string_view enhanced, std::string_view text) {
  if (i >= settled_.size() || settled_[i]) return;
  settled_[i] = true;
  RcptResult& r = results_[i];
  r.outcome = outcome;
  r.code = code;
  r.enhanced.assign(enhanced);
  r.text = one_line(text);
}

void ClientSession::settle_unfinished(Outcome outcome, int code, std::string_view enhanced, std::string_view text) {
  for (size_t i = 0; i < settled_.size(); ++i) settle(i, outcome, code, enhanced, text);
}

void ClientSession::settle_accepted(Outcome outcome, int code, std::string_view enhanced, std::string_view text) {
  for (size_t i = 0; i < settled_.size(); ++i)
    if (accepted_[i]) settle(i, outcome, code, enhanced, text);
}

// Ends the session for a reason that concerns every recipient still open.
void ClientSession::abort(std::string_view enhanced, std::string_view text, bool say_quit) {
  settle_unfinished(Outcome::kDeferred, 0, enhanced, text);
  last_error_ = one_line(text);
  if (say_quit && usable()) out_.append("QUIT\r\n");
  close();
}

// A reply of a kind the step cannot have (a 3xx, a 2xx to DATA): the server's
// state is unknown, so nothing more is said on this connection.
void ClientSession::unexpected(const Reply& r, std::string_view what) {
  abort("4.5.0", fmt::format("backend sent an unexpected reply to {}: {}", what, quote(r)), false);
}

void ClientSession::close() {
  settle_unfinished(Outcome::kDeferred, 0, "4.3.0", "session closed");
  phase_ = Phase::kClosed;
  pending_.clear();
  tx_.in_body = false;
}

// QUIT is only meaningful where the server reads commands: not before its
// greeting, not in the middle of DATA or a TLS handshake.
bool ClientSession::usable() const {
  if (!greeted_ || phase_ == Phase::kClosed || phase_ == Phase::kHandshake || tx_.in_body) return false;
  return std::none_of(pending_.begin(), pending_.end(),
                      [](const Pending& p) { return p.cmd == Cmd::kData || p.cmd == Cmd::kEndOfData; });
}

// What a lost connection interrupted, for the deferral text.
const char* ClientSession::activity() const {
  if (tx_.in_body) return "sending the message";
  if (!pending_.empty()) {
    switch (pending_.front().cmd) {
      case Cmd::kGreeting: return "waiting for the greeting";
      case Cmd::kEhlo: return "sending EHLO";
      case Cmd::kHelo: return "sending HELO";
      case Cmd::kStartTls: return "sending STARTTLS";
      case Cmd::kAuthPlain:
      case Cmd::kAuthLogin:
      case Cmd::kAuthUser:
      case Cmd::kAuthPassword: return "authenticating";
      case Cmd::kMail: return "sending MAIL FROM";
      case Cmd::kRcpt: return "sending RCPT TO";
      case Cmd::kData: return "sending DATA";
      case Cmd::kEndOfData: return "waiting for the reply to the end of data";
      case Cmd::kRset: return "sending RSET";
    }
  }
  if (phase_ == Phase::kHandshake) return "performing the TLS handshake";
  return "idle";
}

}  // namespace mxguard::delivery
