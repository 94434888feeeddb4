// The DMARC request and the Authentication-Results field for one message.
#include "mxguard/scan/auth_results.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

#include "mxguard/core/strings.hpp"

namespace mxguard::scan {

namespace {

std::string domain_of(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : to_lower(address.substr(at + 1));
}

// RFC 2045 token characters: printable ASCII other than the tspecials.
bool is_token_char(char c) {
  auto b = static_cast<unsigned char>(c);
  if (b <= 0x20 || b >= 0x7f) return false;
  return std::string_view("()<>@,;:\\\"/[]?=").find(c) == std::string_view::npos;
}

// A property value as RFC 8601 2.2 has it: a token (domain names are tokens)
// as it is, anything else as a quoted-string. The values come from the
// sender (HELO, d=, s=), so nothing in them may end the field or the string.
std::string pvalue(std::string_view v) {
  if (std::all_of(v.begin(), v.end(), is_token_char)) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') out += '\\';
    out += b < 0x20 || b >= 0x7f ? '?' : c;
  }
  out += '"';
  return out;
}

void property(std::string& out, std::string_view name, std::string_view value) {
  if (value.empty()) return;
  fmt::format_to(std::back_inserter(out), " {}={}", name, pvalue(value));
}

}  // namespace

auth::DmarcRequest dmarc_request(const MessageFacts& facts, const auth::SpfOutcome& spf,
                                 const std::vector<dkim::DkimVerdict>& dkim, std::string_view queue_id) {
  auth::DmarcRequest req;
  req.from_domain = facts.from_domain;
  req.from_fields = facts.from_fields;
  req.spf = spf;
  for (const auto& d : dkim) req.dkim.push_back({to_lower(d.domain), d.status == dkim::DkimStatus::kPass});
  req.sample_key = facts.message_id.empty() ? std::string(queue_id) : facts.message_id;
  return req;
}

std::string authentication_results(std::string_view host, std::string_view sender, std::string_view helo,
                                   const CheckResults& c, const MessageFacts& facts) {
  std::string out = fmt::format("Authentication-Results: {}", host);
  bool any = false;
  if (c.spf) {
    fmt::format_to(std::back_inserter(out), ";\r\n\tspf={}", auth::to_string(c.spf->result));
    if (sender.empty()) property(out, "smtp.helo", helo);
    else property(out, "smtp.mailfrom", c.spf->domain.empty() ? domain_of(sender) : c.spf->domain);
    any = true;
  }
  if (c.dkim) {
    if (c.dkim->empty()) out += ";\r\n\tdkim=none";
    for (const auto& d : *c.dkim) {
      fmt::format_to(std::back_inserter(out), ";\r\n\tdkim={}", dkim::to_string(d.status));
      property(out, "header.d", d.domain);
      property(out, "header.s", d.selector);
    }
    any = true;
  }
  if (c.dmarc) {
    fmt::format_to(std::back_inserter(out), ";\r\n\tdmarc={}", auth::to_string(c.dmarc->result));
    property(out, "header.from", c.dmarc->from_domain.empty() ? facts.from_domain : c.dmarc->from_domain);
    any = true;
  }
  if (!any) out += "; none";
  out += "\r\n";
  return out;
}

}  // namespace mxguard::scan
