// SPF record selection and parsing (RFC 7208 4.5, 4.6, 5, 6) and CIDR matching.
#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>

#include "mxguard/auth/spf_record.hpp"
#include "mxguard/core/strings.hpp"
#include "mxguard/dns/names.hpp"
#include "spf_macro.hpp"

namespace mxguard::auth::spf {

namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }

// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ):
// not all digits, so "a:192.0.2.1" (a common mistake) is a syntax error.
bool is_toplabel(std::string_view s) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return is_alnum(c) || c == '-'; })) return false;
  if (s.find('-') != std::string_view::npos) return is_alnum(s.front()) && is_alnum(s.back());
  return std::any_of(s.begin(), s.end(), is_alpha);
}

// domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand
Status check_domain_spec(std::string_view spec) {
  if (spec.empty()) return Error{"empty domain"};
  auto tokens = tokenize_macro_string(spec, false);
  if (!tokens) return Error{fmt::format("domain '{}': {}", spec, tokens.error())};
  if (tokens->back().type != MacroToken::Type::kLiteral) return {};
  std::string_view tail = tokens->back().text;
  if (tail.ends_with('.')) tail.remove_suffix(1);
  size_t dot = tail.rfind('.');
  if (dot == std::string_view::npos || !is_toplabel(tail.substr(dot + 1)))
    return Error{fmt::format("domain '{}' does not end in a valid top label", spec)};
  return {};
}

// ip4-cidr-length / ip6-cidr-length digits: no leading zero, at most `max`.
std::optional<unsigned> parse_prefix(std::string_view digits, unsigned max) {
  if (digits.empty() || digits.size() > 3 || !std::all_of(digits.begin(), digits.end(), is_digit)) return std::nullopt;
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
  unsigned v = 0;
  for (char c : digits) v = v * 10 + static_cast<unsigned>(c - '0');
  if (v > max) return std::nullopt;
  return v;
}

bool all_digits(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_digit); }

// Strips a trailing dual-cidr-length ("/24", "//64", "/24//64") off `rest`.
Status take_dual_cidr(std::string_view& rest, Mechanism& m) {
  size_t dd = rest.rfind("//");
  if (dd != std::string_view::npos && all_digits(rest.substr(dd + 2))) {
    auto p = parse_prefix(rest.substr(dd + 2), 128);
    if (!p) return Error{fmt::format("bad IPv6 prefix length in '{}'", m.text)};
    m.cidr6 = *p;
    rest = rest.substr(0, dd);
  }
  size_t d = rest.rfind('/');
  if (d != std::string_view::npos && all_digits(rest.substr(d + 1))) {
    auto p = parse_prefix(rest.substr(d + 1), 32);
    if (!p) return Error{fmt::format("bad IPv4 prefix length in '{}'", m.text)};
    m.cidr4 = *p;
    rest = rest.substr(0, d);
  }
  return {};
}

// ":domain-spec" or nothing.
Status take_optional_domain(std::string_view rest, Mechanism& m) {
  if (rest.empty()) return {};
  if (rest[0] != ':') return Error{fmt::format("unexpected '{}' in '{}'", rest, m.text)};
  m.domain_spec = std::string(rest.substr(1));
  return check_domain_spec(m.domain_spec);
}

Status take_network(std::string_view rest, Mechanism& m, bool v6) {
  if (rest.empty() || rest[0] != ':') return Error{fmt::format("'{}' needs a network", m.text)};
  rest.remove_prefix(1);
  size_t slash = rest.find('/');
  std::string addr(rest.substr(0, slash));
  m.network = IpAddress{};
  m.network.v6 = v6;
  if (inet_pton(v6 ? AF_INET6 : AF_INET, addr.c_str(), m.network.bytes.data()) != 1)
    return Error{fmt::format("bad address in '{}'", m.text)};
  unsigned max = v6 ? 128 : 32;
  unsigned& prefix = v6 ? m.cidr6 : m.cidr4;
  prefix = max;
  if (slash != std::string_view::npos) {
    auto p = parse_prefix(rest.substr(slash + 1), max);
    if (!p) return Error{fmt::format("bad prefix length in '{}'", m.text)};
    prefix = *p;
  }
  return {};
}

Result<Mechanism> parse_mechanism(std::string_view term) {
  Mechanism m;
  m.text = std::string(term);
  switch (term.empty() ? '\0' : term[0]) {
    case '+': m.qualifier = Qualifier::kPass; term.remove_prefix(1); break;
    case '-': m.qualifier = Qualifier::kFail; term.remove_prefix(1); break;
    case '~': m.qualifier = Qualifier::kSoftFail; term.remove_prefix(1); break;
    case '?': m.qualifier = Qualifier::kNeutral; term.remove_prefix(1); break;
    default: break;
  }
  size_t end = term.find_first_of(":/");
  std::string name = to_lower(term.substr(0, end));
  std::string_view rest = end == std::string_view::npos ? std::string_view() : term.substr(end);
  Status s;
  if (name == "all") {
    m.kind = Kind::kAll;
    if (!rest.empty()) s = Error{fmt::format("'{}': all takes no argument", m.text)};
  } else if (name == "include" || name == "exists") {
    m.kind = name == "include" ? Kind::kInclude : Kind::kExists;
    if (rest.empty() || rest[0] != ':') s = Error{fmt::format("'{}' needs a domain", m.text)};
    else s = take_optional_domain(rest, m);
  } else if (name == "a" || name == "mx") {
    m.kind = name == "a" ? Kind::kA : Kind::kMx;
    s = take_dual_cidr(rest, m);
    if (s) s = take_optional_domain(rest, m);
  } else if (name == "ptr") {
    m.kind = Kind::kPtr;
    s = take_optional_domain(rest, m);
  } else if (name == "ip4" || name == "ip6") {
    m.kind = name == "ip4" ? Kind::kIp4 : Kind::kIp6;
    s = take_network(rest, m, m.kind == Kind::kIp6);
  } else {
    s = Error{fmt::format("unknown mechanism '{}'", m.text)};
  }
  if (!s) return Error{s.error()};
  return m;
}

// name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ), directly followed by '='.
bool is_modifier(std::string_view term, size_t& eq) {
  eq = term.find('=');
  if (eq == std::string_view::npos || eq == 0 || !is_alpha(term[0])) return false;
  return std::all_of(term.begin(), term.begin() + static_cast<std::ptrdiff_t>(eq),
                     [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; });
}

Status parse_modifier(std::string_view term, size_t eq, Record& r) {
  std::string name = to_lower(term.substr(0, eq));
  std::string value(term.substr(eq + 1));
  if (name == "redirect" || name == "exp") {
    auto& slot = name == "redirect" ? r.redirect : r.exp;
    if (slot) return Error{fmt::format("{}= appears twice", name)};
    if (auto s = check_domain_spec(value); !s) return Error{fmt::format("{}=: {}", name, s.error())};
    slot = std::move(value);
    return {};
  }
  // Unknown modifiers are ignored (RFC 7208 6), but only when well formed.
  if (auto s = check_macro_string(value, false); !s) return Error{fmt::format("modifier {}=: {}", name, s.error())};
  return {};
}

}  // namespace

bool is_spf_record(std::string_view txt) {
  return istarts_with(txt, "v=spf1") && (txt.size() == 6 || txt[6] == ' ');
}

Result<std::optional<std::string>> select_record(const std::vector<std::string>& txts) {
  std::optional<std::string> found;
  for (const auto& t : txts) {
    if (!is_spf_record(t)) continue;
    if (found) return Error{"more than one SPF record"};
    found = t;
  }
  return found;
}

Result<Record> parse_record(std::string_view text) {
  if (!is_spf_record(text)) return Error{"not an SPF record (no v=spf1)"};
  Record r;
  size_t pos = 6;
  while (pos < text.size()) {
    if (text[pos] == ' ') {
      ++pos;
      continue;
    }
    size_t end = text.find(' ', pos);
    std::string_view term = text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? text.size() : end;
    size_t eq = 0;
    if (is_modifier(term, eq)) {
      if (auto s = parse_modifier(term, eq, r); !s) return Error{s.error()};
      continue;
    }
    auto m = parse_mechanism(term);
    if (!m) return Error{m.error()};
    r.mechanisms.push_back(std::move(*m));
  }
  return r;
}

bool cidr_match(const IpAddress& network, unsigned prefix, const IpAddress& ip) {
  if (network.v6 != ip.v6) return false;
  unsigned max = ip.v6 ? 128 : 32;
  prefix = std::min(prefix, max);
  unsigned full = prefix / 8;
  for (unsigned i = 0; i < full; ++i)
    if (network.bytes[i] != ip.bytes[i]) return false;
  unsigned rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xff00u >> rest);
  return (network.bytes[full] & mask) == (ip.bytes[full] & mask);
}

bool is_valid_domain(std::string_view domain) {
  if (domain.ends_with('.')) domain.remove_suffix(1);
  return domain.find('.') != std::string_view::npos && dns::is_query_name(domain);
}

}  // namespace mxguard::auth::spf
