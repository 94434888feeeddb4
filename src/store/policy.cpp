// Allow/block list records: key layout, canonical values, encoding.
#include "mxguard/store/policy.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "mxguard/core/strings.hpp"

namespace mxguard::store {

namespace {
constexpr char kSep = '\x1f';
constexpr uint8_t kListRecordVersion = 1;

bool ldh_domain(std::string_view d) {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.') return false;
  size_t label = 0;
  for (char c : d) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return d.find('.') != std::string_view::npos;
}

// One byte of user input for an error message: as itself when printable, else escaped.
std::string shown_char(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return u > ' ' && u < 0x7f ? std::string(1, c) : fmt::format("\\x{:02x}", u);
}
}  // namespace

std::string_view to_string(ListAction a) { return a == ListAction::kAllow ? "allow" : "block"; }

std::string_view to_string(ListKind k) {
  switch (k) {
    case ListKind::kSender: return "sender";
    case ListKind::kSenderDomain: return "sender-domain";
    case ListKind::kClientIp: return "ip";
  }
  return "?";
}

std::optional<ListAction> list_action_from_string(std::string_view s) {
  if (s == "allow") return ListAction::kAllow;
  if (s == "block") return ListAction::kBlock;
  return std::nullopt;
}

std::optional<ListKind> list_kind_from_string(std::string_view s) {
  if (s == "sender") return ListKind::kSender;
  if (s == "sender-domain") return ListKind::kSenderDomain;
  if (s == "ip") return ListKind::kClientIp;
  return std::nullopt;
}

namespace {
// The refusal for a '*' anywhere but in the two forms the lists understand.
Error wildcard_error(std::string_view value) {
  return Error{fmt::format("'{}': a wildcard must be *@domain (any sender at exactly that domain) or *.domain "
                           "(any subdomain of domain); a plain sender-domain entry covers the domain and its "
                           "subdomains", value)};
}

bool has_star(std::string_view v) { return v.find('*') != std::string_view::npos; }
}  // namespace

Result<std::string> canonical_list_value(ListKind kind, std::string_view value) {
  std::string v = to_lower(trim(value));
  switch (kind) {
    case ListKind::kSender: {
      if (v.starts_with("*@")) {
        std::string_view d = std::string_view(v).substr(2);
        if (has_star(d)) return wildcard_error(value);
        if (!ldh_domain(d)) return Error{fmt::format("'{}': '{}' is not a domain name", value, d)};
        return v;
      }
      if (has_star(v)) return wildcard_error(value);
      size_t at = v.rfind('@');
      if (at == std::string::npos || at == 0 || !ldh_domain(std::string_view(v).substr(at + 1)) ||
          v.find_first_of(" \t\r\n\"<>") != std::string::npos)
        return Error{fmt::format("'{}' is not a sender address (local@domain)", value)};
      return v;
    }
    case ListKind::kSenderDomain: {
      if (!v.empty() && v.back() == '.') v.pop_back();
      std::string_view d = v;
      if (d.starts_with("*.")) d.remove_prefix(2);
      if (has_star(d)) return wildcard_error(value);
      if (!ldh_domain(d)) return Error{fmt::format("'{}' is not a domain name", value)};
      return v;
    }
    case ListKind::kClientIp: {
      if (has_star(v))
        return Error{fmt::format("'{}': ip entries take an address or a CIDR block (192.0.2.0/24, 2001:db8::/32), "
                                 "not a wildcard", value)};
      auto c = Cidr::parse(v);
      if (!c) return Error{fmt::format("'{}' is not an IP address or CIDR block", value)};
      return c->to_string();
    }
  }
  return Error{"unknown list kind"};
}

Result<ListTarget> canonical_list_entry(ListKind kind, std::string_view value) {
  std::string v = to_lower(trim(value));
  ListKind to = kind;
  if (kind != ListKind::kClientIp) {
    if (v.starts_with("*@*.")) {
      v.erase(0, 2);  // any sender at any subdomain: the sender-domain form
      to = ListKind::kSenderDomain;
    } else if (v.starts_with("*@")) {
      to = ListKind::kSender;
    } else if (v.starts_with("*.")) {
      to = ListKind::kSenderDomain;
    }
  }
  auto canonical = canonical_list_value(to, v);
  if (!canonical) return Error{canonical.error()};
  return ListTarget{to, std::move(*canonical)};
}

std::vector<std::string> sender_match_values(ListKind kind, std::string_view sender, std::string_view sender_domain) {
  std::vector<std::string> out;
  if (kind == ListKind::kSender) {
    if (sender.empty()) return out;
    out.push_back(to_lower(sender));
    if (!sender_domain.empty()) out.push_back(fmt::format("*@{}", sender_domain));
  } else if (kind == ListKind::kSenderDomain) {
    if (sender_domain.empty()) return out;
    out.emplace_back(sender_domain);
    for (size_t dot = sender_domain.find('.'); dot != std::string_view::npos; dot = sender_domain.find('.', dot + 1)) {
      std::string_view parent = sender_domain.substr(dot + 1);
      if (parent.empty()) break;
      // "*.com" is never stored (not a domain of two labels): no lookup for it.
      if (parent.find('.') != std::string_view::npos) out.push_back(fmt::format("*.{}", parent));
      out.emplace_back(parent);
    }
  }
  return out;
}

bool list_value_matches(ListKind kind, std::string_view value, std::string_view sender,
                        std::string_view sender_domain, const std::optional<IpAddress>& client) {
  if (kind == ListKind::kClientIp) {
    auto c = Cidr::parse(value);
    return client && c && c->contains(*client);
  }
  for (const auto& v : sender_match_values(kind, sender, sender_domain))
    if (v == value) return true;
  return false;
}

// Built by hand: RCPT looks up a dozen of these per recipient.
std::string list_key(std::string_view scope, ListAction a, ListKind k, std::string_view value) {
  const std::string_view action = to_string(a), kind = to_string(k);
  std::string key;
  key.reserve(scope.size() + action.size() + kind.size() + value.size() + 3);
  key.append(scope).push_back(kSep);
  key.append(action).push_back(kSep);
  key.append(kind).push_back(kSep);
  key.append(value);
  return key;
}

std::string list_prefix(std::string_view scope, ListAction a, ListKind k) { return list_key(scope, a, k, {}); }

std::string encode_list_entry(const ListEntry& e) {
  std::string out(1, static_cast<char>(kListRecordVersion));
  out += nlohmann::json{{"added_ms", e.added_ms}}.dump();
  return out;
}

Result<ListEntry> decode_list_entry(std::string_view key, std::string_view value) {
  ListEntry e;
  size_t a = key.find(kSep), b = key.find(kSep, a + 1), c = key.find(kSep, b + 1);
  if (c == std::string_view::npos) return Error{"corrupt list key"};
  auto action = list_action_from_string(key.substr(a + 1, b - a - 1));
  auto kind = list_kind_from_string(key.substr(b + 1, c - b - 1));
  if (!action || !kind) return Error{"corrupt list key"};
  e.scope = std::string(key.substr(0, a));
  e.action = *action;
  e.kind = *kind;
  e.value = std::string(key.substr(c + 1));
  if (value.empty() || static_cast<uint8_t>(value[0]) != kListRecordVersion)
    return Error{"list record has an unsupported version"};
  auto j = nlohmann::json::parse(value.substr(1), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error{"corrupt list record"};
  e.added_ms = j.value("added_ms", int64_t{0});
  return e;
}

std::optional<std::string_view> base_local_part(std::string_view local, std::string_view delimiters) {
  if (delimiters.empty() || local.empty() || local.front() == '"') return std::nullopt;
  size_t cut = local.find_first_of(delimiters);
  if (cut == std::string_view::npos || cut == 0) return std::nullopt;
  return local.substr(0, cut);
}

Status check_recipient_delimiter(std::string_view delimiters) {
  // The characters of RFC 5322 atext that are not letters or digits, and the
  // dot: anything else cannot occur in an unquoted local part, so it would
  // never cut anything. '%' and '!' are relay characters the SMTP parser
  // refuses in a recipient; accepting them here would promise what never happens.
  constexpr std::string_view kAllowed = "#$&'*+-/=?^_`{|}~.";
  constexpr size_t kMaxDelimiters = 4;
  if (delimiters.size() > kMaxDelimiters)
    return Error{fmt::format("recipient_delimiter: at most {} characters, got {}", kMaxDelimiters, delimiters.size())};
  for (size_t i = 0; i < delimiters.size(); ++i) {
    char c = delimiters[i];
    if (kAllowed.find(c) == std::string_view::npos)
      return Error{fmt::format("recipient_delimiter: '{}' cannot be a delimiter (use one or more of {}, or "
                               "nothing for none)",
                               shown_char(c), kAllowed)};
    if (delimiters.find(c) != i)
      return Error{fmt::format("recipient_delimiter: '{}' is given twice", c)};
  }
  return {};
}

}  // namespace mxguard::store
