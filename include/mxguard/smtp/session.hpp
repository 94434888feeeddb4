// The SMTP server session: a command table driving a connection-level state
// machine with a separate transaction object. Pure: bytes in, replies and
// finished messages out; the shard owns sockets, TLS, timers and storage.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mxguard/core/config.hpp"
#include "mxguard/smtp/address.hpp"
#include "mxguard/smtp/command.hpp"
#include "mxguard/smtp/data_reader.hpp"
#include "mxguard/store/envelope.hpp"

namespace mxguard::smtp {

enum class RcptDecision : uint8_t {
  kAccept,
  kAcceptAllowlisted,  // accepted, and the domain's (or global) allow list matched
  kBlocked,      // 550 5.7.1: the domain's or the global block list matched
  kRelayDenied,  // 550 5.7.1: not a domain we serve (unknown, pending, removed)
  kUnknownUser,  // 550 5.1.1
  kSuspended,    // 450 4.7.1
  kTempFail,     // 451 4.3.0: policy store unavailable
  kCalloutDown,  // 450 4.4.1: recipient verification could not reach the backend
  kPending,      // asked elsewhere (callout): the answer comes through Session::rcpt_resolved()
};

enum class SenderDecision : uint8_t { kAccept, kAllowlisted, kBlocked };

// A reply of 400 or more the session sent on its own (a command, a message's
// content or the connection refused), for the host's tracking events. The
// views are valid during the call only. A verdict's refusal (the host's
// message_refused) is not reported: the host decided it and knows it.
struct Refusal {
  std::string_view decision;  // e.g. relay_denied, unknown_recipient, protocol_error
  int code = 0;
  std::string_view enhanced;
  std::string_view text;
  std::string_view helo;
  std::string_view sender;     // the transaction's, or the refused MAIL's
  std::string_view recipient;  // the refused RCPT's
  std::string_view ref;        // the reference the reply names ("" for none): the
                               // refused content's queue id, or the session's
};

// What a session asks of the shard that runs it. Each question is decided
// at the earliest command that has the facts: the client address at
// connect, the global sender lists at MAIL, the domain's policy at RCPT.
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  virtual bool client_blocked(std::string_view client_ip) = 0;
  virtual SenderDecision check_sender(const Mailbox& sender, std::string_view client_ip) = 0;
  virtual RcptDecision check_recipient(const Mailbox& rcpt, const Mailbox& sender, std::string_view client_ip) = 0;
  // The address RCPT TO:<postmaster> (no domain, RFC 5321 4.5.1) stands for,
  // which the session then checks like any other; or, when there is none,
  // the answer: kUnknownUser (nowhere to send it) or kTempFail (lookup failed).
  virtual std::variant<Mailbox, RcptDecision> postmaster() = 0;
  virtual std::string new_message_id() = 0;
  virtual int64_t now_ms() = 0;
  // Counts a new transaction (MAIL, the null sender too) against the
  // client's message rate; false answers it 451 4.7.1.
  virtual bool allow_message() { return true; }
  virtual void refused(const Refusal&) {}
  // The reference a policy refusal outside a message names (see Refusal);
  // "" names none.
  virtual std::string session_reference() { return {}; }
};

struct SessionParams {
  std::string hostname;
  const SmtpConfig* limits = nullptr;
  bool tls_available = false;  // STARTTLS offered
};

struct ClientInfo {
  std::string ip;
  uint16_t port = 0;
};

struct TlsInfo {
  std::string version;  // "TLSv1.3"
  std::string cipher;
  int bits = 0;
};

// A message whose content is complete and which waits for the durable commit.
struct FinishedMessage {
  store::Envelope envelope;
  std::string data;  // our Received header followed by the content as received
  size_t content_offset = 0;  // where the client's content starts in `data`
};

class Session {
 public:
  Session(const SessionParams& params, SessionHost& host, ClientInfo client);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start();                          // sends the banner
  void receive(std::string_view bytes);  // client bytes (already decrypted)
  void commit_done(bool ok);             // the pending message is durable (or not)
  // The pending message is not stored: the verdict refuses it with this
  // reply (550 reject, 451 greylist, 451 temporary failure).
  void message_refused(int code, std::string_view enhanced, std::string_view text);
  void tls_started(const TlsInfo& info); // STARTTLS handshake completed
  // The answer to a RCPT the host answered kPending (never kPending itself).
  void rcpt_resolved(RcptDecision d);
  bool rcpt_pending() const { return pending_rcpt_ != nullptr; }
  void timeout();                        // an idle or DATA wait expired
  void session_time_exceeded();
  void data_rate_too_low();              // DATA/BDAT content arrives below smtp.min_data_rate
  void shutting_down();                  // engine stop: 421 and close

  // Output to the client; the caller sends and clears it.
  std::string& output() { return out_; }
  bool wants_close() const { return close_; }
  bool wants_starttls() const { return starttls_pending_; }
  bool awaiting_commit() const { return pending_ != nullptr && pending_handed_; }
  // The finished message, handed over once; the session then waits for commit_done().
  std::unique_ptr<FinishedMessage> take_message();
  bool in_data() const { return phase_ != Phase::kCommand; }
  bool in_transaction() const { return tx_ != nullptr; }
  bool greeted() const { return banner_sent_; }
  size_t buffered_input() const { return in_.size(); }
  // The client has begun a command line and not finished it (its deadline
  // runs from the first byte, so a trickle cannot keep it alive).
  bool partial_command() const {
    return phase_ == Phase::kCommand && !blocked() && (!in_.empty() || discarding_long_line_);
  }
  uint64_t messages_accepted() const { return accepted_; }
  // The content received so far in the current transaction (after dot
  // unstuffing, without our Received header), and the id of its message, so
  // the shard can scan it while it streams in. Empty outside DATA/BDAT.
  std::string_view content() const;
  std::string_view content_message_id() const;

 private:
  enum State : uint8_t { kFresh = 1, kReady = 2, kMail = 4, kRcpt = 8 };
  enum class Phase : uint8_t { kCommand, kData, kBdat };

  struct Transaction;
  struct CommandSpec;
  static const CommandSpec kCommands[];

  bool blocked() const { return close_ || starttls_pending_ || pending_ != nullptr || pending_rcpt_ != nullptr; }
  void apply_rcpt(const Mailbox& rcpt, RcptDecision d);
  void process(std::string_view& data);
  void process_buffered();
  void handle_line(std::string_view line);
  void reply(int code, std::string_view enhanced, std::string_view text);
  // A refusal: the reply, reported to the host as `decision` (named from
  // the code when empty), and counted towards smtp.max_errors.
  void error_reply(int code, std::string_view enhanced, std::string_view text, std::string_view decision = {},
                   std::string_view recipient = {}, std::string_view sender = {});
  // Sends a refusal (a reference added to policy refusals) and reports it to the host.
  void refuse(int code, std::string_view enhanced, std::string_view text, std::string_view decision,
              std::string_view recipient = {}, std::string_view sender = {});
  void count_error();
  void close_with(int code, std::string_view enhanced, std::string_view text, std::string_view decision = {});
  void junk();
  State state() const;

  void do_helo(std::string_view args);
  void do_ehlo(std::string_view args);
  void do_mail(std::string_view args);
  void do_rcpt(std::string_view args);
  void do_data(std::string_view args);
  void do_bdat(std::string_view args);
  void do_rset(std::string_view args);
  void do_noop(std::string_view args);
  void do_quit(std::string_view args);
  void do_vrfy(std::string_view args);
  void do_expn(std::string_view args);
  void do_help(std::string_view args);
  void do_starttls(std::string_view args);
  void do_auth(std::string_view args);

  bool set_helo(std::string_view args, bool extended);
  void begin_content();
  void end_bdat_chunk();
  void finish_content();
  void reset_transaction();

  const SessionParams& params_;
  SessionHost& host_;
  ClientInfo client_;
  std::string helo_;
  bool esmtp_ = false;
  std::optional<TlsInfo> tls_;

  std::unique_ptr<Transaction> tx_;
  std::unique_ptr<FinishedMessage> pending_;
  std::unique_ptr<Mailbox> pending_rcpt_;
  bool pending_handed_ = false;

  Phase phase_ = Phase::kCommand;
  uint64_t bdat_left_ = 0;
  bool bdat_last_ = false;
  bool bdat_discard_ = false;  // chunk of a failed/absent transaction: read and drop

  std::string in_;
  std::string out_;
  bool banner_sent_ = false;
  bool close_ = false;
  bool starttls_pending_ = false;
  bool discarding_long_line_ = false;
  unsigned errors_ = 0;
  unsigned junk_ = 0;
  uint64_t accepted_ = 0;
};

// Finds Subject and Message-ID in a header section (unfolded, trimmed, capped).
void extract_summary_headers(std::string_view message, std::string& subject, std::string& message_id);

// RFC 5322 date-time for a Unix time in milliseconds, in UTC.
std::string rfc5322_date(int64_t unix_ms);

}  // namespace mxguard::smtp
