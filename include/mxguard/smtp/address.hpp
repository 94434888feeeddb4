// Parsers for MAIL FROM / RCPT TO arguments: the reverse/forward path and ESMTP parameters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace mxguard::smtp {

struct Mailbox {
  std::string local;   // as sent (quoted local parts keep their quotes)
  std::string domain;  // lower-cased; empty for <> and for bare "postmaster"
  bool is_null() const { return local.empty() && domain.empty(); }
  bool domain_is_literal() const { return !domain.empty() && domain.front() == '['; }
  std::string str() const { return domain.empty() ? local : local + "@" + domain; }
};

enum class PathErrorKind : uint8_t {
  kSyntax,        // 501 5.1.7 / 5.1.3
  kRelayTrick,    // 550 5.7.1: %, !, source route, quoted @
  kNeedsUtf8,     // 553 5.6.7: non-ASCII without SMTPUTF8
  kTooLong,       // 501 5.1.x
  kBadParameter,  // 555 5.5.4
};

struct PathError {
  PathErrorKind kind;
  std::string detail;
};

struct MailFrom {
  Mailbox sender;
  std::optional<uint64_t> size;  // SIZE= as declared
  bool body_8bit = false;
  bool smtputf8 = false;
};

struct RcptTo {
  Mailbox recipient;
};

// `args` is what follows the verb, e.g. "FROM:<a@b> SIZE=100".
std::variant<MailFrom, PathError> parse_mail_from(std::string_view args);
// `smtputf8` says whether the transaction declared SMTPUTF8.
std::variant<RcptTo, PathError> parse_rcpt_to(std::string_view args, bool smtputf8);

// Whether a local part is "postmaster", which RFC 5321 4.5.1 says is case-insensitive.
bool is_postmaster(std::string_view local);

// Validates a domain name as sent in a path (LDH labels, or UTF-8 labels when
// allowed); exposed for tests and for HELO checks.
bool valid_domain(std::string_view domain, bool allow_utf8);

}  // namespace mxguard::smtp
