// Parses the paths and parameters of MAIL FROM and RCPT TO (RFC 5321 4.1.2, RFC 1870, 6152, 6531).
#include "mxguard/smtp/address.hpp"

#include <arpa/inet.h>

#include <string>

#include "mxguard/core/strings.hpp"

namespace mxguard::smtp {

namespace {

constexpr size_t kMaxLocal = 64;
constexpr size_t kMaxDomain = 255;
constexpr size_t kMaxPath = 256;

bool is_atext(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
    case '|': case '}': case '~':
      return true;
    default:
      return c >= 0x80;  // UTF-8; whether it is allowed is checked separately
  }
}

// Length of a well-formed UTF-8 sequence starting at s[i], or 0.
size_t utf8_seq_len(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) { n = 2; cp = c & 0x1f; }
  else if (c >= 0xe0 && c <= 0xef) { n = 3; cp = c & 0x0f; }
  else if (c >= 0xf0 && c <= 0xf4) { n = 4; cp = c & 0x07; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return n;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_seq_len(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool has_non_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return true;
  return false;
}

bool valid_address_literal(std::string_view lit) {
  // lit includes the brackets.
  if (lit.size() < 3 || lit.front() != '[' || lit.back() != ']') return false;
  std::string inner(lit.substr(1, lit.size() - 2));
  unsigned char buf[16];
  if (istarts_with(inner, "IPv6:")) return inet_pton(AF_INET6, inner.c_str() + 5, buf) == 1;
  return inet_pton(AF_INET, inner.c_str(), buf) == 1;
}

struct PathParse {
  Mailbox box;
  bool non_ascii = false;
};

PathError err(PathErrorKind k, std::string d) { return PathError{k, std::move(d)}; }

// Parses the path at the start of `s`; on success `rest` holds the text after it.
std::variant<PathParse, PathError> parse_path(std::string_view s, bool is_rcpt, std::string_view& rest) {
  std::string_view path;
  bool bracketed = !s.empty() && s.front() == '<';
  if (bracketed) {
    bool in_quote = false;
    size_t i = 1;
    for (; i < s.size(); ++i) {
      char c = s[i];
      if (in_quote) {
        if (c == '\\') { ++i; continue; }
        if (c == '"') in_quote = false;
      } else if (c == '"') {
        in_quote = true;
      } else if (c == '>') {
        break;
      }
    }
    if (i >= s.size()) return err(PathErrorKind::kSyntax, "missing '>' at end of address");
    path = s.substr(1, i - 1);
    rest = s.substr(i + 1);
    if (!rest.empty() && rest.front() != ' ')
      return err(PathErrorKind::kSyntax, "text after '>' must be separated by a space");
  } else {
    // Lenient: a bare address without angle brackets, as some old clients send.
    size_t sp = s.find(' ');
    path = s.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : s.substr(sp);
    if (path.empty()) return err(PathErrorKind::kSyntax, "missing address");
  }
  if (path.size() > kMaxPath - 2) return err(PathErrorKind::kTooLong, "address too long");

  PathParse out;
  if (path.empty()) {
    if (is_rcpt) return err(PathErrorKind::kSyntax, "empty recipient address");
    return out;  // null reverse-path <>
  }

  // Source route: "@a,@b:user@domain".
  if (path.front() == '@') {
    if (is_rcpt) return err(PathErrorKind::kRelayTrick, "source routes are not accepted");
    size_t colon = path.find(':');
    if (colon == std::string_view::npos) return err(PathErrorKind::kSyntax, "bad source route");
    path = path.substr(colon + 1);  // RFC 5321 4.1.1.2: accept and ignore in MAIL
    if (path.empty()) return err(PathErrorKind::kSyntax, "bad source route");
  }

  size_t i = 0;
  std::string_view local;
  if (path.front() == '"') {
    bool closed = false;
    std::string content;
    for (i = 1; i < path.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(path[i]);
      if (c == '\\') {
        if (i + 1 >= path.size()) break;
        unsigned char e = static_cast<unsigned char>(path[++i]);
        if (e < 0x20 || e == 0x7f) return err(PathErrorKind::kSyntax, "control character in address");
        content += static_cast<char>(e);
        continue;
      }
      if (c == '"') { closed = true; ++i; break; }
      if (c < 0x20 || c == 0x7f) return err(PathErrorKind::kSyntax, "control character in address");
      content += static_cast<char>(c);
    }
    if (!closed) return err(PathErrorKind::kSyntax, "unterminated quoted local part");
    if (is_rcpt && content.find_first_of("@%!") != std::string::npos)
      return err(PathErrorKind::kRelayTrick, "relay characters in quoted local part");
    local = path.substr(0, i);
  } else {
    while (i < path.size() && path[i] != '@') {
      unsigned char c = static_cast<unsigned char>(path[i]);
      if (c == '.') {
        if (i == 0 || path[i - 1] == '.') return err(PathErrorKind::kSyntax, "bad dots in local part");
      } else if (!is_atext(c)) {
        return err(PathErrorKind::kSyntax, "invalid character in local part");
      }
      ++i;
    }
    local = path.substr(0, i);
    if (local.empty()) return err(PathErrorKind::kSyntax, "empty local part");
    if (local.back() == '.') return err(PathErrorKind::kSyntax, "bad dots in local part");
    if (is_rcpt && local.find_first_of("%!") != std::string_view::npos)
      return err(PathErrorKind::kRelayTrick, "relay characters in local part");
  }
  if (local.size() > kMaxLocal) return err(PathErrorKind::kTooLong, "local part too long");

  if (i >= path.size()) {
    // RFC 5321 4.5.1: "postmaster" without a domain must be accepted as a recipient.
    if (is_rcpt && is_postmaster(local)) {
      out.box.local = std::string(local);
      return out;
    }
    return err(PathErrorKind::kSyntax, "address has no domain");
  }
  std::string_view domain = path.substr(i + 1);
  if (domain.empty()) return err(PathErrorKind::kSyntax, "empty domain");
  if (domain.size() > kMaxDomain) return err(PathErrorKind::kTooLong, "domain too long");
  if (domain.front() == '[') {
    if (!valid_address_literal(domain)) return err(PathErrorKind::kSyntax, "bad address literal");
  } else if (domain.find('@') != std::string_view::npos) {
    return err(is_rcpt ? PathErrorKind::kRelayTrick : PathErrorKind::kSyntax,
               "more than one '@' in address");
  } else if (!valid_domain(domain, true)) {
    return err(PathErrorKind::kSyntax, "invalid domain");
  }
  if (!valid_utf8(local) || !valid_utf8(domain))
    return err(PathErrorKind::kSyntax, "address is not valid UTF-8");
  out.non_ascii = has_non_ascii(local) || has_non_ascii(domain);
  out.box.local = std::string(local);
  out.box.domain = to_lower(domain);
  return out;
}

std::string_view next_word(std::string_view& s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  size_t sp = s.find(' ');
  std::string_view w = s.substr(0, sp);
  s = sp == std::string_view::npos ? std::string_view() : s.substr(sp);
  return w;
}

}  // namespace

bool is_postmaster(std::string_view local) { return iequals(local, "postmaster"); }

bool valid_domain(std::string_view d, bool allow_utf8) {
  if (d.empty() || d.size() > 253) return false;
  size_t start = 0;
  while (start <= d.size()) {
    size_t dot = d.find('.', start);
    std::string_view label = d.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (unsigned char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                (allow_utf8 && c >= 0x80);
      if (!ok) return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return allow_utf8 ? valid_utf8(d) : true;
}

std::variant<MailFrom, PathError> parse_mail_from(std::string_view args) {
  if (!istarts_with(args, "FROM:")) return err(PathErrorKind::kSyntax, "expected MAIL FROM:<address>");
  std::string_view s = trim(args.substr(5));
  std::string_view rest;
  auto p = parse_path(s, false, rest);
  if (auto* e = std::get_if<PathError>(&p)) return *e;
  auto& pp = std::get<PathParse>(p);

  MailFrom mf;
  mf.sender = std::move(pp.box);
  while (true) {
    std::string_view word = next_word(rest);
    if (word.empty()) break;
    size_t eq = word.find('=');
    std::string_view key = word.substr(0, eq);
    std::string_view val = eq == std::string_view::npos ? std::string_view() : word.substr(eq + 1);
    if (iequals(key, "SIZE")) {
      auto n = parse_u64(val);
      if (!n || mf.size) return err(PathErrorKind::kBadParameter, "bad SIZE parameter");
      mf.size = *n;
    } else if (iequals(key, "BODY")) {
      if (iequals(val, "8BITMIME")) mf.body_8bit = true;
      else if (!iequals(val, "7BIT")) return err(PathErrorKind::kBadParameter, "unsupported BODY type");
    } else if (iequals(key, "SMTPUTF8") && eq == std::string_view::npos) {
      mf.smtputf8 = true;
    } else {
      return err(PathErrorKind::kBadParameter, "unsupported MAIL parameter");
    }
  }
  if (pp.non_ascii && !mf.smtputf8)
    return err(PathErrorKind::kNeedsUtf8, "non-ASCII address needs the SMTPUTF8 parameter");
  return mf;
}

std::variant<RcptTo, PathError> parse_rcpt_to(std::string_view args, bool smtputf8) {
  if (!istarts_with(args, "TO:")) return err(PathErrorKind::kSyntax, "expected RCPT TO:<address>");
  std::string_view s = trim(args.substr(3));
  std::string_view rest;
  auto p = parse_path(s, true, rest);
  if (auto* e = std::get_if<PathError>(&p)) return *e;
  auto& pp = std::get<PathParse>(p);
  if (!next_word(rest).empty()) return err(PathErrorKind::kBadParameter, "unsupported RCPT parameter");
  if (pp.non_ascii && !smtputf8)
    return err(PathErrorKind::kNeedsUtf8, "non-ASCII address needs the SMTPUTF8 parameter");
  return RcptTo{std::move(pp.box)};
}

}  // namespace mxguard::smtp
