// The quarantine as the front ends show it: tenant scope, JSON, safe preview.
#include "mxguard/admin/quarantine_view.hpp"

#include <chrono>
#include <cstdlib>
#include <map>

#include <fmt/format.h>

#include "mxguard/core/strings.hpp"
#include "mxguard/admin/access.hpp"
#include "mxguard/admin/text.hpp"
#include "mxguard/digest/send.hpp"

namespace mxguard::admin {

namespace {

constexpr size_t kMaxPreviewText = 256 * 1024;
constexpr size_t kMaxPreviewHeaders = 500;
constexpr size_t kMaxHeaderValue = 8 * 1024;
constexpr size_t kMaxAttachments = 200;

// Collects what the preview shows from the MIME walker's events. The walker
// already decodes, converts charsets and reduces HTML to its visible text;
// attachment content is only counted, never kept or interpreted.
class PreviewHandler final : public mime::Handler {
 public:
  Preview result() {
    Preview p = std::move(p_);
    if (!plain_.empty()) {
      p.text = std::move(plain_);
    } else {
      p.text = std::move(html_);
      p.text_from_html = !p.text.empty();
    }
    return p;
  }

  void on_header(const mime::PartInfo& part, std::string_view name, std::string_view value) override {
    if (part.index != 0) return;
    if (p_.headers.size() >= kMaxPreviewHeaders || value.size() > kMaxHeaderValue) {
      p_.truncated = true;
      if (p_.headers.size() >= kMaxPreviewHeaders) return;
      value = value.substr(0, kMaxHeaderValue);
    }
    p_.headers.emplace_back(std::string(name), std::string(value));
  }

  void on_text(const mime::PartInfo& part, mime::TextKind kind, std::string_view utf8) override {
    if (part.is_attachment) return;  // a text file sent as an attachment is listed, not shown
    auto [out, last_part] = kind == mime::TextKind::kHtml ? html_state() : plain_state();
    if (last_part != part.index && !out.empty()) append(out, "\n\n");
    last_part = part.index;
    append(out, utf8);
  }

  void on_attachment_data(const mime::PartInfo& part, std::string_view decoded) override {
    if (Preview::Attachment* a = attachment(part)) a->size += decoded.size();
  }

  void on_archive_member(const mime::PartInfo& part, const mime::ArchiveMember& m) override {
    if (Preview::Attachment* a = attachment(part)) a->members.push_back(m.name);
  }

  void on_part_end(const mime::PartInfo& part, std::string_view detected) override {
    if (!part.is_attachment || part.is_multipart || part.is_message) return;
    if (Preview::Attachment* a = attachment(part)) a->detected_type = std::string(detected);
  }

  void on_limit(mime::LimitHit what) override { p_.limits.emplace_back(mime::to_string(what)); }

 private:
  using TextState = std::pair<std::string&, unsigned&>;
  TextState plain_state() { return {plain_, plain_part_}; }
  TextState html_state() { return {html_, html_part_}; }

  void append(std::string& out, std::string_view s) {
    if (out.size() >= kMaxPreviewText) {
      p_.truncated = true;
      return;
    }
    size_t room = kMaxPreviewText - out.size();
    if (s.size() > room) {
      // Cut on a UTF-8 character boundary.
      while (room > 0 && (static_cast<unsigned char>(s[room]) & 0xc0) == 0x80) --room;
      s = s.substr(0, room);
      p_.truncated = true;
    }
    out.append(s);
  }

  Preview::Attachment* attachment(const mime::PartInfo& part) {
    if (!part.is_attachment || part.is_multipart || part.is_message) return nullptr;
    auto it = index_.find(part.index);
    if (it != index_.end()) return &p_.attachments[it->second];
    if (p_.attachments.size() >= kMaxAttachments) {
      p_.truncated = true;
      return nullptr;
    }
    index_.emplace(part.index, p_.attachments.size());
    Preview::Attachment a;
    a.filename = part.filename;
    a.content_type = part.content_type;
    p_.attachments.push_back(std::move(a));
    return &p_.attachments.back();
  }

  Preview p_;
  std::string plain_, html_;
  unsigned plain_part_ = 0, html_part_ = 0;
  std::map<unsigned, size_t> index_;  // part index -> attachments slot
};

// Reads `n` decimal digits at `at`.
bool digits(std::string_view s, size_t at, size_t n, int& out) {
  if (s.size() < at + n) return false;
  out = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

// "YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|(+|-)HH[:]MM]" to epoch milliseconds.
std::optional<int64_t> parse_iso(std::string_view s) {
  int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
  if (!digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d))
    return std::nullopt;
  using namespace std::chrono;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  size_t at = 10;
  int64_t offset_min = 0;
  if (at < s.size()) {
    if ((s[at] != 'T' && s[at] != 't' && s[at] != ' ') || !digits(s, at + 1, 2, h) || s.size() < at + 6 ||
        s[at + 3] != ':' || !digits(s, at + 4, 2, mi))
      return std::nullopt;
    at += 6;
    if (at < s.size() && s[at] == ':') {
      if (!digits(s, at + 1, 2, sec)) return std::nullopt;
      at += 3;
      if (at < s.size() && s[at] == '.') {
        size_t n = 0;
        int scale = 100;
        for (++at; at < s.size() && s[at] >= '0' && s[at] <= '9'; ++at, ++n) {
          ms += (s[at] - '0') * scale;
          scale /= 10;
        }
        if (n == 0) return std::nullopt;
      }
    }
    if (h > 23 || mi > 59 || sec > 59) return std::nullopt;
    if (at < s.size() && (s[at] == 'Z' || s[at] == 'z')) {
      ++at;
    } else if (at < s.size() && (s[at] == '+' || s[at] == '-')) {
      int oh, om;
      size_t m_at = at + 3 < s.size() && s[at + 3] == ':' ? at + 4 : at + 3;
      if (!digits(s, at + 1, 2, oh) || !digits(s, m_at, 2, om) || oh > 23 || om > 59) return std::nullopt;
      offset_min = (s[at] == '-' ? -1 : 1) * (oh * 60 + om);
      at = m_at + 2;
    }
    if (at != s.size()) return std::nullopt;
  }
  int64_t days = sys_days(ymd).time_since_epoch().count();
  return ((days * 86'400 + h * 3'600 + mi * 60 + sec - offset_min * 60) * 1'000) + ms;
}

}  // namespace

Result<QuarantineScope> QuarantineScope::of(const store::ConfigStore& store, const Principal& p) {
  QuarantineScope s;
  switch (p.role) {
    case store::Role::kOperator:
      s.all_ = true;
      break;
    case store::Role::kCustomerAdmin:
    case store::Role::kPostmaster: {
      auto domains = store.domains();
      if (!domains) return Error{domains.error()};
      for (const auto& d : *domains)
        if (may_manage_domain(p, d)) s.domains_.insert(d.name);
      break;
    }
    case store::Role::kUser: {
      if (!p.link_addresses.empty()) {
        for (const auto& a : p.link_addresses) s.addresses_.insert(to_lower(a));
        break;
      }
      auto u = store.user(p.name);
      if (!u) return Error{u.error()};
      if (!*u) return Error{fmt::format("no such user: {}", p.name)};
      // The digest's rule (digest::user_addresses), so a digest lists what the user's console shows.
      auto addresses = digest::user_addresses(store, **u);
      if (!addresses) return Error{addresses.error()};
      s.addresses_.insert(addresses->begin(), addresses->end());
      break;
    }
  }
  return s;
}

bool QuarantineScope::sees(std::string_view address) const {
  if (all_) return true;
  return addresses_.contains(to_lower(address)) || domains_.contains(store::quarantine_domain_of(address));
}

bool QuarantineScope::covers_domain(std::string_view domain) const {
  if (all_ || domains_.contains(std::string(domain))) return true;
  for (const auto& a : addresses_)
    if (store::quarantine_domain_of(a) == domain) return true;
  return false;
}

std::vector<std::string> QuarantineScope::visible(const std::vector<std::string>& held) const {
  std::vector<std::string> out;
  for (const auto& h : held)
    if (sees(h)) out.push_back(h);
  return out;
}

nlohmann::ordered_json reasons_json(const std::vector<std::string>& reasons) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& r : reasons) {
    size_t eq = r.rfind('=');
    double score = 0;
    std::string rule = r;
    if (eq != std::string::npos) {
      std::string num = r.substr(eq + 1);
      char* end = nullptr;
      double v = std::strtod(num.c_str(), &end);
      if (!num.empty() && end && *end == '\0') {
        score = v;
        rule = r.substr(0, eq);
      }
    }
    out.push_back({{"rule", rule}, {"score", score}});
  }
  return out;
}

nlohmann::ordered_json quarantine_json(const store::QuarantineRecord& r, const std::vector<std::string>& recipients) {
  const store::Envelope& e = r.envelope;
  return {{"id", e.id},
          {"shard", store::shard_of_message_id(e.id)},
          {"sender", e.sender},
          {"recipients", recipients},
          {"size", e.size},
          {"subject", e.subject},
          {"message_id", e.message_id},
          {"received", iso8601_ms(e.received_ms)},
          {"score", e.score},
          {"action", e.action},
          {"reasons", reasons_json(e.reasons)},
          {"client_ip", e.client_ip},
          {"helo", e.helo}};
}

Preview make_preview(std::string_view message, const mime::Limits& limits) {
  PreviewHandler h;
  {
    mime::Walker walker(h, limits);
    walker.feed(message);
    walker.finish();
  }
  return h.result();
}

nlohmann::ordered_json preview_json(const Preview& p) {
  nlohmann::ordered_json headers = nlohmann::ordered_json::array();
  for (const auto& [name, value] : p.headers) headers.push_back({{"name", name}, {"value", value}});
  nlohmann::ordered_json attachments = nlohmann::ordered_json::array();
  for (const auto& a : p.attachments)
    attachments.push_back({{"filename", a.filename},
                           {"content_type", a.content_type},
                           {"detected_type", a.detected_type},
                           {"size", a.size},
                           {"members", a.members}});
  return {{"headers", headers},   {"text", p.text},       {"text_from_html", p.text_from_html},
          {"attachments", attachments}, {"truncated", p.truncated}, {"limits", p.limits}};
}

std::string terminal_safe(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n' || c == '\t') {
      out += static_cast<char>(c);
    } else if (c == '\r') {
      continue;
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
      // C1 controls (U+0080..U+009F): some terminals act on them like ESC sequences.
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(s[++i]));
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

Result<int64_t> parse_time_arg(std::string_view input, int64_t now_ms) {
  std::string_view s = trim(input);
  auto bad = [&] {
    return Error{fmt::format("'{}' is not a time (2026-05-01, 2026-05-01T12:00:00Z, @UNIX_SECONDS, now, "
                             "7d ago as '7d', or ahead as '+7d')", printable(input))};
  };
  if (s.empty()) return bad();
  if (s == "now") return now_ms;
  if (s[0] == '@') {
    auto secs = parse_u64(s.substr(1));
    if (!secs || *secs > 100'000'000'000ull) return bad();
    return static_cast<int64_t>(*secs) * 1000;
  }
  // A duration needs its unit: a bare number would be ambiguous.
  bool ahead = s[0] == '+';
  std::string_view d = ahead ? s.substr(1) : s;
  if (!d.empty() && d.back() >= 'a' && d.back() <= 'z') {
    auto ms = parse_duration_ms(d);
    if (ms && *ms <= 100ull * 365 * 86'400'000)
      return ahead ? now_ms + static_cast<int64_t>(*ms) : now_ms - static_cast<int64_t>(*ms);
  }
  if (ahead) return bad();
  auto t = parse_iso(s);
  if (!t) return bad();
  return *t;
}

}  // namespace mxguard::admin
