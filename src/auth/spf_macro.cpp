// SPF macro-strings (RFC 7208 7): tokenizing, syntax checks and expansion.
#include <fmt/format.h>

#include <algorithm>

#include "mxguard/auth/spf_record.hpp"
#include "mxguard/core/strings.hpp"
#include "spf_macro.hpp"

namespace mxguard::auth::spf {

namespace {

// RFC 7208 7.3 asks for at least 127 parts; more than a name can hold is pointless.
constexpr unsigned kMaxKeep = 255;

bool is_delimiter(char c) {
  return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

// macro-literal = %x21-24 / %x26-7E: visible ASCII except '%'.
bool is_macro_literal(char c) { return c >= 0x21 && c <= 0x7e && c != '%'; }

bool is_macro_letter(char lower, bool exp_text) {
  switch (lower) {
    case 's': case 'l': case 'o': case 'd': case 'i': case 'p': case 'h': case 'v':
      return true;
    case 'c': case 'r': case 't':
      return exp_text;
    default:
      return false;
  }
}

// Parses the inside of "%{...}" (after the brace) up to and including '}'.
Result<MacroToken> parse_macro(std::string_view text, size_t& pos, bool exp_text) {
  MacroToken t;
  t.type = MacroToken::Type::kMacro;
  if (pos >= text.size()) return Error{"unterminated macro"};
  char letter = text[pos++];
  t.letter = ascii_lower(letter);
  t.url_escape = letter != t.letter;
  if (!is_macro_letter(t.letter, exp_text))
    return Error{fmt::format("macro letter '{}' not allowed here", letter)};
  bool digits = false;
  uint64_t keep = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    digits = true;
    keep = std::min<uint64_t>(keep * 10 + static_cast<uint64_t>(text[pos] - '0'), kMaxKeep);
    ++pos;
  }
  if (digits && keep == 0) return Error{"macro transformer 0: must keep at least one part"};
  t.keep = static_cast<unsigned>(keep);
  if (pos < text.size() && (text[pos] == 'r' || text[pos] == 'R')) {
    t.reverse = true;
    ++pos;
  }
  while (pos < text.size() && is_delimiter(text[pos])) t.delimiters += text[pos++];
  if (pos >= text.size() || text[pos] != '}') return Error{"malformed macro (expected '}')"};
  ++pos;
  return t;
}

std::vector<std::string_view> split_any(std::string_view value, std::string_view delimiters) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= value.size(); ++i) {
    if (i == value.size() || delimiters.find(value[i]) != std::string_view::npos) {
      parts.push_back(value.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

// i: dotted quad, or the 32 IPv6 nibbles in order, dot separated (RFC 7208 7.3).
std::string ip_macro(const IpAddress& ip) {
  if (!ip.v6) return ip.to_string();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < 16; ++i) {
    if (i > 0) out += '.';
    out += kHex[ip.bytes[i] >> 4];
    out += '.';
    out += kHex[ip.bytes[i] & 0x0f];
  }
  return out;
}

std::string letter_value(char letter, const MacroContext& ctx) {
  switch (letter) {
    case 's': return ctx.sender;
    case 'l': return ctx.local_part;
    case 'o': return ctx.sender_domain;
    case 'd': return ctx.domain;
    case 'i': return ip_macro(ctx.ip);
    case 'p': return ctx.validated;
    case 'h': return ctx.helo;
    case 'v': return ctx.ip.v6 ? "ip6" : "in-addr";
    case 'c': return ctx.ip.to_string();
    case 'r': return ctx.receiver;
    case 't': return std::to_string(ctx.timestamp);
    default: return {};
  }
}

// Uppercase macros are URL-escaped: everything but RFC 3986 unreserved characters.
std::string url_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    auto b = static_cast<unsigned char>(c);
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (unreserved) out += c;
    else out += fmt::format("%{:02X}", b);
  }
  return out;
}

std::string expand_macro(const MacroToken& t, const MacroContext& ctx) {
  std::string value = letter_value(t.letter, ctx);
  auto parts = split_any(value, t.delimiters.empty() ? std::string_view(".") : std::string_view(t.delimiters));
  if (t.reverse) std::reverse(parts.begin(), parts.end());
  size_t first = t.keep > 0 && t.keep < parts.size() ? parts.size() - t.keep : 0;
  std::string out;
  for (size_t i = first; i < parts.size(); ++i) {
    if (i > first) out += '.';
    out += parts[i];
  }
  return t.url_escape ? url_escape(out) : out;
}

// RFC 7208 7.3: drop whole labels from the left until the name fits.
std::string fit_domain(std::string name) {
  while (name.size() > 253) {
    size_t dot = name.find('.');
    if (dot == std::string::npos) return {};
    name.erase(0, dot + 1);
  }
  return name;
}

}  // namespace

Result<std::vector<MacroToken>> tokenize_macro_string(std::string_view text, bool exp_text) {
  std::vector<MacroToken> tokens;
  size_t pos = 0;
  while (pos < text.size()) {
    char c = text[pos];
    if (c != '%') {
      // explain-string = *( macro-string / SP ): only explanations hold spaces.
      if (!is_macro_literal(c) && !(exp_text && c == ' ')) return Error{fmt::format("character 0x{:02x} not allowed", static_cast<uint8_t>(c))};
      if (tokens.empty() || tokens.back().type != MacroToken::Type::kLiteral) tokens.push_back({});
      tokens.back().text += c;
      ++pos;
      continue;
    }
    if (pos + 1 >= text.size()) return Error{"'%' at the end"};
    char next = text[pos + 1];
    pos += 2;
    if (next == '{') {
      auto t = parse_macro(text, pos, exp_text);
      if (!t) return Error{t.error()};
      tokens.push_back(std::move(*t));
      continue;
    }
    MacroToken e;
    e.type = MacroToken::Type::kEscape;
    if (next == '%') e.text = "%";
    else if (next == '_') e.text = " ";
    else if (next == '-') e.text = "%20";
    else return Error{fmt::format("'%{}' is not a macro", next)};
    tokens.push_back(std::move(e));
  }
  return tokens;
}

Status check_macro_string(std::string_view text, bool exp_text) {
  auto tokens = tokenize_macro_string(text, exp_text);
  if (!tokens) return Error{tokens.error()};
  return {};
}

Result<std::string> expand(std::string_view text, const MacroContext& ctx, bool exp_text, bool is_domain) {
  auto tokens = tokenize_macro_string(text, exp_text);
  if (!tokens) return Error{tokens.error()};
  std::string out;
  for (const auto& t : *tokens) out += t.type == MacroToken::Type::kMacro ? expand_macro(t, ctx) : t.text;
  return is_domain ? fit_domain(std::move(out)) : out;
}

bool uses_macro(std::string_view text, char letter) {
  auto tokens = tokenize_macro_string(text, true);
  if (!tokens) return false;
  char lower = ascii_lower(letter);
  return std::any_of(tokens->begin(), tokens->end(),
                     [&](const MacroToken& t) { return t.type == MacroToken::Type::kMacro && t.letter == lower; });
}

}  // namespace mxguard::auth::spf
