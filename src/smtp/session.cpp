// The SMTP server session (RFC 5321, 1870, 2920, 3030, 3207, 6152, 6531, 2034).
// Connection state lives here; MAIL..end of content lives in Transaction.
#include "mxguard/smtp/session.hpp"

#include <fmt/format.h>

#include <ctime>

#include "mxguard/core/strings.hpp"
#include "mxguard/smtp/reply.hpp"

namespace mxguard::smtp {

namespace {
// Pipelined input buffered while a commit or STARTTLS is pending; a client
// that sends more than this without reading replies is cut off.
constexpr size_t kMaxBufferedInput = 256 * 1024;
constexpr size_t kMaxHeloLength = 255;
}  // namespace

struct Session::Transaction {
  MailFrom mail;
  std::vector<std::string> recipients;
  std::vector<std::string> allowlisted;  // "*" when the global lists allowed the sender
  bool content_started = false;
  std::optional<DataReader> reader;
  std::unique_ptr<FinishedMessage> message;
  size_t header_offset = 0;  // where the client's content starts (after our Received)
};

// The command table: verb, states in which it is allowed, whether an unknown
// or misplaced use counts as junk, and its handler.
struct Session::CommandSpec {
  Verb verb;
  uint8_t allowed;  // bitmask of State
  void (Session::*handler)(std::string_view);
};

constexpr uint8_t kAny = 0xff;

const Session::CommandSpec Session::kCommands[] = {
    {Verb::kEhlo, kAny, &Session::do_ehlo},
    {Verb::kHelo, kAny, &Session::do_helo},
    {Verb::kMail, kReady, &Session::do_mail},
    {Verb::kRcpt, kMail | kRcpt, &Session::do_rcpt},
    {Verb::kData, kMail | kRcpt, &Session::do_data},
    {Verb::kBdat, kAny, &Session::do_bdat},  // always read the chunk, even when refused
    {Verb::kRset, kAny, &Session::do_rset},
    {Verb::kNoop, kAny, &Session::do_noop},
    {Verb::kQuit, kAny, &Session::do_quit},
    {Verb::kVrfy, kAny, &Session::do_vrfy},
    {Verb::kExpn, kAny, &Session::do_expn},
    {Verb::kHelp, kAny, &Session::do_help},
    {Verb::kStarttls, kReady, &Session::do_starttls},
    {Verb::kAuth, kAny, &Session::do_auth},
};

Session::Session(const SessionParams& params, SessionHost& host, ClientInfo client)
    : params_(params), host_(host), client_(std::move(client)) {}

Session::~Session() = default;

Session::State Session::state() const {
  if (helo_.empty()) return kFresh;
  if (!tx_) return kReady;
  return tx_->recipients.empty() ? kMail : kRcpt;
}

void Session::reply(int code, std::string_view enhanced, std::string_view text) {
  append_reply(out_, code, enhanced, text);
}

namespace {
// The decision a refusal is reported as when its call site names none.
std::string_view default_decision(int code, std::string_view enhanced) {
  if (enhanced.starts_with("5.5.") || enhanced.starts_with("5.1.3") || enhanced.starts_with("5.1.7") ||
      enhanced.starts_with("5.6.7"))
    return "protocol_error";
  if (enhanced == "5.3.4") return "too_large";
  return code >= 500 ? "refused" : "deferred";
}

// Refusals of mail by policy name a reference in their text, which a
// sender's bounce carries to the people who ask "why didn't it arrive?";
// `mxguard track --ref` finds the session from it. Protocol errors do not.
bool names_reference(std::string_view decision) {
  for (std::string_view d : {"relay_denied", "unknown_recipient", "blocked", "client_blocked", "suspended",
                             "rate_limited", "temp_failure", "callout_unavailable", "too_large", "bad_content",
                             "too_many_recipients", "storage_failure"})
    if (d == decision) return true;
  return false;
}
}  // namespace

void Session::refuse(int code, std::string_view enhanced, std::string_view text, std::string_view decision,
                     std::string_view recipient, std::string_view sender) {
  if (decision.empty()) decision = default_decision(code, enhanced);
  std::string ref;
  if (names_reference(decision))
    ref = tx_ && tx_->message ? tx_->message->envelope.id : host_.session_reference();
  std::string with_ref;
  if (!ref.empty()) {
    with_ref = fmt::format("{}; reference {}", text, ref);
    text = with_ref;
  }
  reply(code, enhanced, text);
  std::string from;
  if (sender.empty() && tx_) from = tx_->mail.sender.str();
  host_.refused(Refusal{decision, code, enhanced, text, helo_, sender.empty() ? std::string_view(from) : sender,
                        recipient, ref});
}

void Session::count_error() {
  if (++errors_ >= params_.limits->max_errors && !close_)
    close_with(421, "4.7.0", fmt::format("{} Error: too many errors", params_.hostname), "too_many_errors");
}

void Session::error_reply(int code, std::string_view enhanced, std::string_view text, std::string_view decision,
                          std::string_view recipient, std::string_view sender) {
  refuse(code, enhanced, text, decision, recipient, sender);
  count_error();
}

void Session::junk() {
  if (++junk_ >= params_.limits->max_junk_commands && !close_)
    close_with(421, "4.7.0", fmt::format("{} Error: too many unrecognized commands", params_.hostname), "too_many_errors");
}

void Session::close_with(int code, std::string_view enhanced, std::string_view text, std::string_view decision) {
  if (code >= 400) refuse(code, enhanced, text, decision);
  else reply(code, enhanced, text);
  close_ = true;
  in_.clear();
}

void Session::start() {
  if (banner_sent_ || close_) return;
  banner_sent_ = true;
  if (host_.client_blocked(client_.ip)) {
    close_with(554, "5.7.1", fmt::format("{} Access denied for [{}]", params_.hostname, client_.ip), "client_blocked");
    return;
  }
  reply(220, "", fmt::format("{} ESMTP MxGuard", params_.hostname));
}

void Session::timeout() {
  if (close_) return;
  close_with(421, "4.4.2", fmt::format("{} Error: timeout exceeded", params_.hostname), "timeout");
}

void Session::session_time_exceeded() {
  if (close_) return;
  close_with(421, "4.4.2", fmt::format("{} Error: session time limit exceeded", params_.hostname), "session_time");
}

void Session::data_rate_too_low() {
  if (close_) return;
  close_with(421, "4.4.2", fmt::format("{} Error: data arriving too slowly", params_.hostname), "too_slow");
}

void Session::shutting_down() {
  if (close_) return;
  close_with(421, "4.3.2", fmt::format("{} Service shutting down, try again later", params_.hostname), "shutting_down");
}

void Session::receive(std::string_view bytes) {
  if (close_) return;
  if (!banner_sent_) {
    // RFC 5321 4.3.1: the client waits for the greeting. Bots that do not are refused.
    close_with(554, "5.5.0", "Protocol error: talking before the greeting", "early_talker");
    return;
  }
  if (in_.empty() && !blocked()) {
    process(bytes);
    if (!bytes.empty() && !close_) in_.assign(bytes);
  } else {
    in_.append(bytes);
    process_buffered();
  }
  // Plaintext that followed STARTTLS must never run inside the TLS session
  // (CVE-2011-0411 class of bugs).
  if (starttls_pending_) in_.clear();
  if (in_.size() > kMaxBufferedInput && !close_)
    close_with(421, "4.7.0", fmt::format("{} Error: too much pipelined input", params_.hostname), "protocol_error");
}

void Session::process(std::string_view& data) {
  while (!data.empty() && !blocked()) {
    if (phase_ == Phase::kData) {
      size_t used = tx_->reader->feed_dot(data, tx_->message->data);
      data.remove_prefix(used);
      if (tx_->reader->done()) finish_content();
      continue;
    }
    if (phase_ == Phase::kBdat) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(bdat_left_, data.size()));
      if (!bdat_discard_) tx_->reader->feed_raw(data.substr(0, take), tx_->message->data);
      data.remove_prefix(take);
      bdat_left_ -= take;
      if (bdat_left_ == 0) end_bdat_chunk();
      continue;
    }
    size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      if (data.size() > params_.limits->max_command_length) {
        discarding_long_line_ = true;  // keep reading until the line ends
        data = {};
      }
      return;  // incomplete line stays buffered
    }
    std::string_view line = data.substr(0, nl);
    data.remove_prefix(nl + 1);
    if (discarding_long_line_ || line.size() + 1 > params_.limits->max_command_length) {
      discarding_long_line_ = false;
      error_reply(500, "5.5.2", "Error: line too long");
      continue;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    handle_line(line);
  }
}

void Session::handle_line(std::string_view line) {
  Command cmd = parse_command(line);
  if (cmd.verb == Verb::kHttp) {
    // A proxy or web probe: nothing useful can come of answering it.
    close_ = true;
    in_.clear();
    return;
  }
  const CommandSpec* spec = nullptr;
  for (const auto& c : kCommands)
    if (c.verb == cmd.verb) spec = &c;
  if (!spec) {
    error_reply(502, "5.5.2", "Error: command not recognized");
    junk();
    return;
  }
  if (!(spec->allowed & state())) {
    if (state() == kFresh && cmd.verb != Verb::kStarttls)
      error_reply(503, "5.5.1", "Error: send HELO/EHLO first");
    else if (cmd.verb == Verb::kMail)
      error_reply(503, "5.5.1", "Error: nested MAIL command");
    else if (cmd.verb == Verb::kStarttls && tx_)
      error_reply(503, "5.5.1", "Error: STARTTLS not allowed during a transaction");
    else if (cmd.verb == Verb::kStarttls)
      error_reply(503, "5.5.1", "Error: send EHLO first");
    else
      error_reply(503, "5.5.1", "Error: need MAIL command");
    return;
  }
  // In a BDAT sequence only BDAT, RSET, QUIT and NOOP may follow (RFC 3030 2).
  if (tx_ && tx_->content_started && cmd.verb != Verb::kBdat && cmd.verb != Verb::kRset &&
      cmd.verb != Verb::kQuit && cmd.verb != Verb::kNoop) {
    error_reply(503, "5.5.1", "Error: BDAT sequence in progress");
    return;
  }
  (this->*spec->handler)(cmd.args);
}

bool Session::set_helo(std::string_view args, bool extended) {
  if (args.empty()) {
    error_reply(501, "5.5.4", extended ? "Syntax: EHLO hostname" : "Syntax: HELO hostname");
    return false;
  }
  std::string_view name = args.substr(0, args.find(' '));
  if (name.size() > kMaxHeloLength) {
    error_reply(501, "5.5.4", "Error: HELO name too long");
    return false;
  }
  reset_transaction();
  helo_.clear();
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    helo_.push_back((u <= ' ' || u == 0x7f || c == '(' || c == ')' || c == ';') ? '?' : c);
  }
  esmtp_ = extended;
  return true;
}

void Session::do_ehlo(std::string_view args) {
  if (!set_helo(args, true)) return;
  std::vector<std::string> lines;
  lines.push_back(fmt::format("{} Hello {} [{}]", params_.hostname, helo_, client_.ip));
  lines.push_back("PIPELINING");
  lines.push_back(fmt::format("SIZE {}", params_.limits->max_message_size));
  if (params_.tls_available && !tls_) lines.push_back("STARTTLS");
  lines.push_back("ENHANCEDSTATUSCODES");
  lines.push_back("8BITMIME");
  lines.push_back("SMTPUTF8");
  lines.push_back("CHUNKING");
  append_multiline(out_, 250, lines);
}

void Session::do_helo(std::string_view args) {
  if (!set_helo(args, false)) return;
  reply(250, "", params_.hostname);
}

void Session::do_mail(std::string_view args) {
  auto parsed = parse_mail_from(args);
  if (auto* e = std::get_if<PathError>(&parsed)) {
    switch (e->kind) {
      case PathErrorKind::kBadParameter: error_reply(555, "5.5.4", e->detail); break;
      case PathErrorKind::kNeedsUtf8: error_reply(553, "5.6.7", e->detail); break;
      default: error_reply(501, "5.1.7", fmt::format("Bad sender address syntax: {}", e->detail));
    }
    return;
  }
  auto& mf = std::get<MailFrom>(parsed);
  if (mf.size && *mf.size > params_.limits->max_message_size) {
    error_reply(552, "5.3.4", "Message size exceeds fixed maximum message size", "too_large", {}, mf.sender.str());
    return;
  }
  if (!host_.allow_message()) {
    error_reply(451, "4.7.1", "Error: too many messages from your address, try again later", "rate_limited", {},
                mf.sender.str());
    return;
  }
  SenderDecision sd = mf.sender.is_null() ? SenderDecision::kAccept : host_.check_sender(mf.sender, client_.ip);
  if (sd == SenderDecision::kBlocked) {
    error_reply(550, "5.7.1", fmt::format("<{}>: Sender address rejected: access denied", mf.sender.str()), "blocked", {},
                mf.sender.str());
    return;
  }
  tx_ = std::make_unique<Transaction>();
  tx_->mail = std::move(mf);
  if (sd == SenderDecision::kAllowlisted) tx_->allowlisted.push_back("*");
  reply(250, "2.1.0", "Ok");
}

void Session::do_rcpt(std::string_view args) {
  auto parsed = parse_rcpt_to(args, tx_->mail.smtputf8);
  if (auto* e = std::get_if<PathError>(&parsed)) {
    switch (e->kind) {
      case PathErrorKind::kRelayTrick: error_reply(550, "5.7.1", fmt::format("Relay access denied: {}", e->detail), "relay_denied"); break;
      case PathErrorKind::kBadParameter: error_reply(555, "5.5.4", e->detail); break;
      case PathErrorKind::kNeedsUtf8: error_reply(553, "5.6.7", e->detail); break;
      default: error_reply(501, "5.1.3", fmt::format("Bad recipient address syntax: {}", e->detail));
    }
    return;
  }
  if (tx_->recipients.size() >= params_.limits->max_recipients) {
    refuse(452, "4.5.3", "Error: too many recipients", "too_many_recipients", std::get<RcptTo>(parsed).recipient.str());
    return;
  }
  Mailbox& rcpt = std::get<RcptTo>(parsed).recipient;
  if (rcpt.domain.empty()) {
    // The parser lets only "postmaster" through without a domain; it must be
    // accepted (RFC 5321 4.5.1), and the envelope needs a routable address.
    auto pm = host_.postmaster();
    if (auto* none = std::get_if<RcptDecision>(&pm)) {
      if (*none == RcptDecision::kUnknownUser)
        error_reply(550, "5.1.1", "<postmaster>: Recipient address rejected: no postmaster address is set up here",
                    "unknown_recipient", "postmaster");
      else
        apply_rcpt(rcpt, *none);
      return;
    }
    rcpt = std::move(std::get<Mailbox>(pm));
  }
  RcptDecision d = rcpt.domain.empty() || rcpt.domain_is_literal()
                       ? RcptDecision::kRelayDenied
                       : host_.check_recipient(rcpt, tx_->mail.sender, client_.ip);
  if (d == RcptDecision::kPending) {
    // Commands after this RCPT wait in the input buffer until the answer.
    pending_rcpt_ = std::make_unique<Mailbox>(std::move(rcpt));
    return;
  }
  apply_rcpt(rcpt, d);
}

void Session::rcpt_resolved(RcptDecision d) {
  if (!pending_rcpt_) return;
  std::unique_ptr<Mailbox> rcpt = std::move(pending_rcpt_);
  if (close_ || !tx_) return;
  apply_rcpt(*rcpt, d == RcptDecision::kPending ? RcptDecision::kTempFail : d);
  process_buffered();
}

void Session::apply_rcpt(const Mailbox& rcpt, RcptDecision d) {
  switch (d) {
    case RcptDecision::kAccept:
    case RcptDecision::kAcceptAllowlisted: {
      std::string addr = rcpt.str();
      bool dup = false;
      for (const auto& r : tx_->recipients)
        if (r == addr) dup = true;
      if (!dup) {
        if (d == RcptDecision::kAcceptAllowlisted) tx_->allowlisted.push_back(addr);
        tx_->recipients.push_back(std::move(addr));
      }
      reply(250, "2.1.5", "Ok");
      return;
    }
    case RcptDecision::kBlocked:
      error_reply(550, "5.7.1", fmt::format("<{}>: Recipient address rejected: access denied", rcpt.str()), "blocked", rcpt.str());
      return;
    case RcptDecision::kRelayDenied:
      error_reply(550, "5.7.1", fmt::format("<{}>: Relay access denied", rcpt.str()), "relay_denied", rcpt.str());
      return;
    case RcptDecision::kUnknownUser:
      error_reply(550, "5.1.1", fmt::format("<{}>: Recipient address rejected: user unknown", rcpt.str()), "unknown_recipient", rcpt.str());
      return;
    case RcptDecision::kSuspended:
      error_reply(450, "4.7.1", fmt::format("<{}>: Recipient domain temporarily suspended", rcpt.str()), "suspended", rcpt.str());
      return;
    case RcptDecision::kTempFail:
    case RcptDecision::kPending:
      error_reply(451, "4.3.0", fmt::format("<{}>: Temporary lookup failure", rcpt.str()), "temp_failure", rcpt.str());
      return;
    case RcptDecision::kCalloutDown:
      // Never a 550 for a backend we could not ask (DESIGN: no false rejects).
      error_reply(450, "4.4.1", fmt::format("<{}>: Recipient address verification failed: backend unavailable", rcpt.str()),
                  "callout_unavailable", rcpt.str());
      return;
  }
}

void Session::begin_content() {
  tx_->content_started = true;
  tx_->reader.emplace(DataReader::Limits{params_.limits->max_message_size, params_.limits->max_line_length});
  auto msg = std::make_unique<FinishedMessage>();
  store::Envelope& env = msg->envelope;
  env.id = host_.new_message_id();
  env.received_ms = host_.now_ms();
  env.sender = tx_->mail.sender.str();
  env.recipients = tx_->recipients;
  env.allowlisted = tx_->allowlisted;
  env.client_ip = client_.ip;
  env.client_port = client_.port;
  env.helo = helo_;
  env.smtputf8 = tx_->mail.smtputf8;
  env.body_8bit = tx_->mail.body_8bit;
  if (tls_) env.tls = fmt::format("{} {}", tls_->version, tls_->cipher);

  // RFC 5321 4.4 trace header; protocol names from RFC 3848 and RFC 6531.
  std::string proto = tx_->mail.smtputf8 ? "UTF8SMTP" : (esmtp_ ? "ESMTP" : "SMTP");
  if (tls_) proto += "S";
  std::string& d = msg->data;
  d.reserve(4096);
  fmt::format_to(std::back_inserter(d), "Received: from {} ([{}])\r\n\tby {} (MxGuard) with {} id {}",
                 helo_, client_.ip, params_.hostname, proto, env.id);
  if (tls_)
    fmt::format_to(std::back_inserter(d), "\r\n\t(using {} with cipher {} ({} bits))", tls_->version,
                   tls_->cipher, tls_->bits);
  if (tx_->recipients.size() == 1)
    fmt::format_to(std::back_inserter(d), "\r\n\tfor <{}>", tx_->recipients.front());
  fmt::format_to(std::back_inserter(d), "; {}\r\n", rfc5322_date(env.received_ms));
  tx_->header_offset = d.size();
  tx_->message = std::move(msg);
}

void Session::do_data(std::string_view args) {
  if (!args.empty()) {
    error_reply(501, "5.5.4", "Syntax: DATA");
    return;
  }
  if (tx_->recipients.empty()) {
    error_reply(554, "5.5.1", "Error: no valid recipients");
    return;
  }
  begin_content();
  phase_ = Phase::kData;
  reply(354, "", "End data with <CR><LF>.<CR><LF>");
}

void Session::do_bdat(std::string_view args) {
  std::string_view size_text = args.substr(0, args.find(' '));
  std::string_view rest = trim(args.substr(size_text.size()));
  auto size = parse_u64(size_text);
  bool last = iequals(rest, "LAST");
  if (!size || (!rest.empty() && !last)) {
    // Without a size the chunk boundary is lost; the only safe answer is to hang up.
    close_with(501, "5.5.4", "Syntax: BDAT size [LAST]");
    return;
  }
  bdat_left_ = *size;
  bdat_last_ = last;
  bdat_discard_ = false;
  if (!tx_ || tx_->recipients.empty()) {
    bdat_discard_ = true;  // RFC 3030: read and discard the refused chunk
  } else if (!tx_->content_started) {
    begin_content();
  }
  phase_ = Phase::kBdat;
  if (bdat_left_ == 0) end_bdat_chunk();
}

void Session::end_bdat_chunk() {
  phase_ = Phase::kCommand;
  if (bdat_discard_) {
    bdat_discard_ = false;
    if (tx_ && tx_->recipients.empty())
      error_reply(554, "5.5.1", "Error: no valid recipients");
    else
      error_reply(503, "5.5.1", "Error: need MAIL and RCPT before BDAT");
    return;
  }
  if (tx_->reader->too_big()) {
    error_reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
    reset_transaction();
    return;
  }
  if (bdat_last_) {
    finish_content();
    return;
  }
  reply(250, "2.0.0", fmt::format("Ok: {} octets received", tx_->reader->size()));
}

void Session::finish_content() {
  phase_ = Phase::kCommand;
  const DataReader& r = *tx_->reader;
  if (r.too_big()) {
    error_reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
    reset_transaction();
    return;
  }
  if (r.bare_lf()) {
    error_reply(550, "5.6.0", "Message refused: bare <LF> line ending (RFC 5321 2.3.8)", "bad_content");
    reset_transaction();
    return;
  }
  if (r.nul()) {
    error_reply(550, "5.6.0", "Message refused: NUL character in the content (BINARYMIME is not offered)",
                "bad_content");
    reset_transaction();
    return;
  }
  if (r.line_too_long()) {
    error_reply(550, "5.6.0",
                fmt::format("Message refused: line longer than {} octets", params_.limits->max_line_length),
                "bad_content");
    reset_transaction();
    return;
  }
  pending_ = std::move(tx_->message);
  pending_->envelope.size = pending_->data.size();
  pending_->content_offset = tx_->header_offset;
  extract_summary_headers(std::string_view(pending_->data).substr(tx_->header_offset),
                          pending_->envelope.subject, pending_->envelope.message_id);
  pending_handed_ = false;
  tx_.reset();
}

std::unique_ptr<FinishedMessage> Session::take_message() {
  if (!pending_ || pending_handed_) return nullptr;
  pending_handed_ = true;
  auto copy = std::make_unique<FinishedMessage>();
  // The session keeps only the id; the message itself goes to storage.
  copy->envelope = pending_->envelope;
  copy->data = std::move(pending_->data);
  copy->content_offset = pending_->content_offset;
  pending_->data.clear();
  pending_->data.shrink_to_fit();
  return copy;
}

void Session::commit_done(bool ok) {
  if (!pending_) return;
  std::string id = pending_->envelope.id;
  std::string sender = pending_->envelope.sender;
  pending_.reset();
  pending_handed_ = false;
  if (ok) {
    ++accepted_;
    reply(250, "2.0.0", fmt::format("Ok: queued as {}", id));
  } else {
    refuse(451, "4.3.0", "Error: temporary storage failure, try again later", "storage_failure", {}, sender);
  }
  process_buffered();
  if (starttls_pending_) in_.clear();
}

void Session::message_refused(int code, std::string_view enhanced, std::string_view text) {
  if (!pending_) return;
  pending_.reset();
  pending_handed_ = false;
  reply(code, enhanced, text);  // the host decided it and records it itself
  count_error();
  process_buffered();
  if (starttls_pending_) in_.clear();
}

std::string_view Session::content() const {
  if (!tx_ || !tx_->message) return {};
  return std::string_view(tx_->message->data).substr(tx_->header_offset);
}

std::string_view Session::content_message_id() const {
  if (!tx_ || !tx_->message) return {};
  return tx_->message->envelope.id;
}

void Session::process_buffered() {
  if (in_.empty() || blocked()) return;
  std::string_view data(in_);
  process(data);
  in_.erase(0, in_.size() - data.size());
}

void Session::reset_transaction() {
  tx_.reset();
  phase_ = Phase::kCommand;
}

void Session::do_rset(std::string_view) {
  reset_transaction();
  reply(250, "2.0.0", "Ok");
}

void Session::do_noop(std::string_view) { reply(250, "2.0.0", "Ok"); }

void Session::do_quit(std::string_view) {
  close_with(221, "2.0.0", "Bye");
}

void Session::do_vrfy(std::string_view args) {
  if (args.empty()) {
    error_reply(501, "5.5.4", "Syntax: VRFY address");
    return;
  }
  reply(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

void Session::do_expn(std::string_view) { error_reply(502, "5.5.1", "Error: EXPN not supported"); }

void Session::do_help(std::string_view) {
  reply(214, "2.0.0", "See RFC 5321 (https://www.rfc-editor.org/rfc/rfc5321)");
}

void Session::do_auth(std::string_view) {
  error_reply(503, "5.5.1", "Error: authentication not enabled");
}

void Session::do_starttls(std::string_view args) {
  if (!params_.tls_available) {
    error_reply(502, "5.5.1", "Error: STARTTLS not available");
    return;
  }
  if (tls_) {
    error_reply(503, "5.5.1", "Error: TLS already active");
    return;
  }
  if (!args.empty()) {
    error_reply(501, "5.5.4", "Syntax: STARTTLS");
    return;
  }
  if (!esmtp_) {
    error_reply(503, "5.5.1", "Error: send EHLO first");
    return;
  }
  reply(220, "2.0.0", "Ready to start TLS");
  starttls_pending_ = true;
}

void Session::tls_started(const TlsInfo& info) {
  starttls_pending_ = false;
  tls_ = info;
  // RFC 3207 4.2: forget everything learnt before TLS; the client must EHLO again.
  helo_.clear();
  esmtp_ = false;
  reset_transaction();
}

void extract_summary_headers(std::string_view msg, std::string& subject, std::string& message_id) {
  constexpr size_t kScanLimit = 256 * 1024;
  constexpr size_t kFieldLimit = 998;
  if (msg.size() > kScanLimit) msg = msg.substr(0, kScanLimit);
  std::string* target = nullptr;
  size_t pos = 0;
  while (pos < msg.size()) {
    size_t eol = msg.find('\n', pos);
    std::string_view line = msg.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? msg.size() : eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // end of the header section
    if (line.front() == ' ' || line.front() == '\t') {
      if (target && target->size() < kFieldLimit) {
        target->push_back(' ');
        target->append(trim(line));
      }
      continue;
    }
    target = nullptr;
    if (istarts_with(line, "Subject:") && subject.empty()) {
      target = &subject;
      subject.assign(trim(line.substr(8)));
    } else if (istarts_with(line, "Message-ID:") && message_id.empty()) {
      target = &message_id;
      message_id.assign(trim(line.substr(11)));
    }
  }
  if (subject.size() > kFieldLimit) subject.resize(kFieldLimit);
  if (message_id.size() > kFieldLimit) message_id.resize(kFieldLimit);
}

std::string rfc5322_date(int64_t unix_ms) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t t = static_cast<time_t>(unix_ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  return fmt::format("{}, {} {} {} {:02d}:{:02d}:{:02d} +0000", kDays[tm.tm_wday], tm.tm_mday,
                     kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace mxguard::smtp
