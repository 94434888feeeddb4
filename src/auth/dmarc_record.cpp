// DMARC records (RFC 7489 6.3, 6.4), alignment (3.1) and the verdict (6.6).
#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "mxguard/auth/dmarc_record.hpp"
#include "mxguard/core/strings.hpp"

namespace mxguard::auth::dmarc {

namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim_wsp(std::string_view s) {
  while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
  return s;
}

std::optional<DmarcPolicy> parse_policy(std::string_view v) {
  if (iequals(v, "none")) return DmarcPolicy::kNone;
  if (iequals(v, "quarantine")) return DmarcPolicy::kQuarantine;
  if (iequals(v, "reject")) return DmarcPolicy::kReject;
  return std::nullopt;
}

// "mailto:dmarc@example.com!10m": a scheme, a colon and something after it.
bool is_uri(std::string_view u) {
  u = trim_wsp(u);
  size_t colon = u.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= u.size()) return false;
  auto scheme = u.substr(0, colon);
  bool alpha_first = (scheme[0] >= 'a' && scheme[0] <= 'z') || (scheme[0] >= 'A' && scheme[0] <= 'Z');
  return alpha_first && std::all_of(scheme.begin(), scheme.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
                  c == '-' || c == '.';
         });
}

bool has_valid_uri(std::string_view list) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    auto item = list.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (is_uri(item)) return true;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return false;
}

std::string normalise(std::string_view d) {
  std::string s = to_lower(d);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// RFC 7489 6.6.4: outside the pct= sample the next lower policy applies.
DmarcPolicy lower(DmarcPolicy p) {
  return p == DmarcPolicy::kReject ? DmarcPolicy::kQuarantine : DmarcPolicy::kNone;
}

}  // namespace

bool is_dmarc_record(std::string_view txt) {
  txt = trim_wsp(txt);
  if (txt.empty() || (txt[0] != 'v' && txt[0] != 'V')) return false;
  txt = trim_wsp(txt.substr(1));
  if (txt.empty() || txt[0] != '=') return false;
  txt = trim_wsp(txt.substr(1));
  if (!txt.starts_with("DMARC1")) return false;
  txt.remove_prefix(6);
  txt = trim_wsp(txt);
  return txt.empty() || txt[0] == ';';
}

Result<Record> parse_record(std::string_view text) {
  if (!is_dmarc_record(text)) return Error{"not a DMARC record (does not start with v=DMARC1)"};
  Record r;
  std::optional<std::string_view> p, sp, rua, pct, adkim, aspf;
  size_t start = 0;
  while (start <= text.size()) {
    size_t semi = text.find(';', start);
    auto tag = trim_wsp(text.substr(start, semi == std::string_view::npos ? std::string_view::npos : semi - start));
    start = semi == std::string_view::npos ? text.size() + 1 : semi + 1;
    size_t eq = tag.find('=');
    // Malformed pieces are skipped, as RFC 7489 6.3 asks of syntax errors past v=.
    if (eq == std::string_view::npos) continue;
    std::string name = to_lower(trim_wsp(tag.substr(0, eq)));
    auto value = trim_wsp(tag.substr(eq + 1));
    auto* slot = name == "p" ? &p : name == "sp" ? &sp : name == "rua" ? &rua : name == "pct" ? &pct
               : name == "adkim" ? &adkim : name == "aspf" ? &aspf : nullptr;
    if (slot && !*slot) *slot = value;  // the first occurrence counts
  }
  auto policy = p ? parse_policy(*p) : std::nullopt;
  auto sub = sp ? parse_policy(*sp) : std::nullopt;
  if (!policy || (sp && !sub)) {
    if (!rua || !has_valid_uri(*rua))
      return Error{!policy ? "no valid p= tag" : "invalid sp= tag"};
    // RFC 7489 6.6.3 step 6: a reporting-only record, read as p=none.
    r.p = DmarcPolicy::kNone;
    r.p_defaulted = true;
  } else {
    r.p = *policy;
    r.sp = sub;
  }
  if (pct) {
    auto v = parse_u64(*pct);
    if (v && *v <= 100) r.pct = static_cast<unsigned>(*v);
  }
  if (adkim) r.adkim_strict = iequals(*adkim, "s");
  if (aspf) r.aspf_strict = iequals(*aspf, "s");
  return r;
}

Discovery discover(const std::vector<std::string>& txt) {
  Discovery out;
  const std::string* only = nullptr;
  for (const auto& t : txt) {
    if (!is_dmarc_record(t)) continue;
    if (only) {
      out.kind = Discovery::Kind::kSeveral;
      return out;
    }
    only = &t;
  }
  if (!only) return out;
  auto record = parse_record(*only);
  if (!record) {
    out.kind = Discovery::Kind::kUnusable;
    out.error = record.error();
    return out;
  }
  out.kind = Discovery::Kind::kRecord;
  out.record = *record;
  return out;
}

bool aligned(std::string_view authenticated, std::string_view from_domain, bool strict) {
  std::string a = normalise(authenticated), f = normalise(from_domain);
  if (a.empty() || f.empty()) return false;
  if (strict) return a == f;
  return organisational_domain(a) == organisational_domain(f);
}

bool in_sample(std::string_view key, unsigned pct) {
  if (pct >= 100) return true;
  if (pct == 0) return false;
  if (key.empty()) return true;
  // FNV-1a: stable across runs and builds, unlike std::hash.
  uint32_t h = 2166136261u;
  for (char c : key) {
    h ^= static_cast<uint8_t>(c);
    h *= 16777619u;
  }
  return h % 100 < pct;
}

DmarcOutcome evaluate(const Record& record, const DmarcRequest& request, std::string_view from_domain,
                      std::string_view org_domain, bool found_at_org) {
  DmarcOutcome out;
  out.from_domain = std::string(from_domain);
  out.org_domain = std::string(org_domain);
  std::vector<std::string> why;
  if (request.spf.result == SpfResult::kPass && aligned(request.spf.domain, from_domain, record.aspf_strict))
    why.push_back(fmt::format("spf pass for {} aligned", request.spf.domain));
  for (const auto& d : request.dkim) {
    if (d.pass && aligned(d.domain, from_domain, record.adkim_strict)) {
      why.push_back(fmt::format("dkim pass for d={} aligned", d.domain));
      break;
    }
  }
  if (!why.empty()) {
    out.result = DmarcResult::kPass;
    out.detail = why.size() == 1 ? why[0] : why[0] + ", " + why[1];
    return out;
  }
  out.result = DmarcResult::kFail;
  bool subdomain = found_at_org && from_domain != org_domain;
  DmarcPolicy published = subdomain && record.sp ? *record.sp : record.p;
  bool sampled = in_sample(request.sample_key, record.pct);
  out.policy = sampled ? published : lower(published);
  out.detail = fmt::format("no aligned spf or dkim pass (spf {} for {}, {} dkim signature(s)); {}={}{}",
                           to_string(request.spf.result), request.spf.domain.empty() ? "-" : request.spf.domain,
                           request.dkim.size(), subdomain && record.sp ? "sp" : "p", to_string(published),
                           sampled ? "" : fmt::format(", outside pct={} sample", record.pct));
  return out;
}

}  // namespace mxguard::auth::dmarc
