// The per-message scanner: walker events through the Hyperscan databases and
// the Bayes tokenizer, then built-ins and combinations into a score.
#include "mxguard/scan/scanner.hpp"

#include <hs.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "mxguard/core/strings.hpp"

namespace mxguard::scan {

namespace {

constexpr size_t kMaxHeaderBlock = 256u << 10;
constexpr unsigned kMaxUrlsScanned = 1000;
constexpr size_t kMaxUrlHosts = 50;
constexpr size_t kMaxSummary = 998;

int on_match(unsigned id, unsigned long long, unsigned long long, unsigned, void* ctx) {
  auto* fired = static_cast<std::vector<uint8_t>*>(ctx);
  if (id < fired->size()) (*fired)[id] = 1;
  return 0;
}

// Valid UTF-8 (no overlongs, no surrogates), so UTF-8-mode patterns are defined.
bool valid_utf8(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > n || c == 0xC0 || c == 0xC1 || c > 0xF4) return false;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F))
      return false;
    i += len;
  }
  return true;
}

std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) out += static_cast<unsigned char>(c) < 0x80 ? c : '?';
  return out;
}

int stream_slot(Target t) {
  switch (t) {
    case Target::kText: return 0;
    case Target::kHtml: return 1;
    case Target::kRaw: return 2;
    case Target::kAttachmentContent: return 3;
    default: return -1;
  }
}

std::string capped(std::string_view s) { return std::string(s.substr(0, kMaxSummary)); }

}  // namespace

struct MessageScan::Stream {
  hs_stream_t* stream = nullptr;
  unsigned part = 0;
};

Scanner::Scanner(std::shared_ptr<const CompiledRules> rules) { swap(std::move(rules)); }

Scanner::~Scanner() { hs_free_scratch(scratch_); }

void Scanner::swap(std::shared_ptr<const CompiledRules> rules) {
  // Growing the scratch for the new databases keeps it valid for the old
  // ones, which messages in flight still scan with.
  for (const auto& d : rules->databases()) {
    if (hs_alloc_scratch(d.db, &scratch_) != HS_SUCCESS) throw std::runtime_error("hs_alloc_scratch failed");
  }
  rules_ = std::move(rules);
}

MessageScan::MessageScan(Scanner& scanner, const ScanOptions& options)
    : scanner_(scanner),
      rules_(scanner.rules()),
      walker_(std::make_unique<mime::Walker>(static_cast<mime::Handler&>(*this), options.limits)),
      dkim_(std::make_unique<dkim::DkimVerifier>()),
      tokens_(std::make_unique<bayes::Tokenizer>()),
      fired_(rules_->rules().rules.size(), 0),
      rules_on_(options.rules),
      dkim_on_(options.dkim) {
  streams_.resize(4);
}

MessageScan::~MessageScan() {
  for (auto& s : streams_) {
    if (s && s->stream) hs_close_stream(s->stream, nullptr, nullptr, nullptr);
  }
}

void MessageScan::feed(std::string_view bytes) {
  if (finished_) return;
  size_ += bytes.size();
  if (dkim_on_) dkim_->feed(bytes);
  walker_->feed(bytes);
}

void MessageScan::finish() {
  if (finished_) return;
  walker_->finish();
  if (dkim_on_) dkim_->finish();
  if (!headers_done_) {
    // A message without a body never reaches on_part_begin for part 0.
    if (const auto* db = rules_->db(Target::kHeaders); db && !headers_.empty()) scan_string(db, headers_);
    headers_done_ = true;
  }
  close_all_streams();
  finished_ = true;
}

void MessageScan::scan_string(const hs_database* db, std::string_view s) {
  if (!db || s.empty() || !rules_on_) return;
  std::string clean;
  if (!valid_utf8(s)) {
    clean = sanitize(s);
    s = clean;
  }
  hs_scan(db, s.data(), static_cast<unsigned>(std::min<size_t>(s.size(), UINT32_MAX)), 0, scanner_.scratch(),
          on_match, &fired_);
}

void MessageScan::stream_data(Target t, unsigned part, std::string_view data) {
  const hs_database* db = rules_->db(t);
  if (!db || data.empty() || !rules_on_) return;
  int slot = stream_slot(t);
  auto& s = streams_[slot];
  if (s && s->stream && s->part != part) close_stream(t);
  if (!s) s = std::make_unique<Stream>();
  if (!s->stream) {
    if (hs_open_stream(db, 0, &s->stream) != HS_SUCCESS) {
      s->stream = nullptr;
      return;
    }
    s->part = part;
  }
  while (!data.empty()) {
    size_t n = std::min<size_t>(data.size(), 1u << 30);
    hs_scan_stream(s->stream, data.data(), static_cast<unsigned>(n), 0, scanner_.scratch(), on_match, &fired_);
    data.remove_prefix(n);
  }
}

void MessageScan::close_stream(Target t) {
  auto& s = streams_[stream_slot(t)];
  if (!s || !s->stream) return;
  // Closing reports matches anchored at the end of the data ("$").
  hs_close_stream(s->stream, scanner_.scratch(), on_match, &fired_);
  s->stream = nullptr;
}

void MessageScan::close_all_streams() {
  for (Target t : {Target::kText, Target::kHtml, Target::kRaw, Target::kAttachmentContent}) close_stream(t);
}

void MessageScan::on_header(const mime::PartInfo& part, std::string_view name, std::string_view value) {
  if (part.index != 0) {
    // Attached parts' headers are content, not this message's; their
    // Content-* fields still say something about the message.
    if (istarts_with(name, "content-")) tokens_->add_header(name, value);
    return;
  }
  std::string lname = to_lower(name);
  scan_string(rules_->header_db(lname), value);
  if (lname == "subject" && facts_.subject.empty()) {
    facts_.subject = capped(value);
    scan_string(rules_->db(Target::kSubject), value);
  } else if (lname == "from") {
    // The first one is the author for the rules and DMARC; the count tells
    // DMARC when there is more than one.
    if (facts_.from_fields++ == 0) {
      facts_.from = capped(value);
      facts_.from_domain = from_domain_of(value);
      scan_string(rules_->db(Target::kFrom), value);
    }
  } else if (lname == "message-id" && facts_.message_id.empty()) {
    facts_.message_id = capped(trim(value));
  }
  if (headers_.size() + name.size() + value.size() + 3 <= kMaxHeaderBlock) {
    headers_.append(name);
    headers_ += ": ";
    headers_.append(value);
    headers_ += '\n';
  }
  tokens_->add_header(name, value);
}

void MessageScan::on_part_begin(const mime::PartInfo& part) {
  if (part.index == 0 && !headers_done_) {
    scan_string(rules_->db(Target::kHeaders), headers_);
    headers_done_ = true;
  }
  if (part.is_attachment && !part.is_multipart) {
    if (!part.filename.empty()) scan_string(rules_->db(Target::kAttachmentName), part.filename);
    if (!part.content_type.empty()) scan_string(rules_->db(Target::kAttachmentType), part.content_type);
  }
}

void MessageScan::on_text(const mime::PartInfo& part, mime::TextKind, std::string_view utf8) {
  stream_data(Target::kText, part.index, utf8);
  tokens_->add_text(utf8);
}

void MessageScan::on_html(const mime::PartInfo& part, std::string_view source) {
  stream_data(Target::kHtml, part.index, source);
}

void MessageScan::on_url(const mime::PartInfo&, std::string_view url, std::string_view host) {
  if (urls_scanned_ >= kMaxUrlsScanned) return;
  ++urls_scanned_;
  scan_string(rules_->db(Target::kUrl), url);
  if (host.empty()) return;
  if (std::find(facts_.url_hosts.begin(), facts_.url_hosts.end(), host) != facts_.url_hosts.end()) return;
  scan_string(rules_->db(Target::kUrlHost), host);
  tokens_->add_url_host(host);
  if (facts_.url_hosts.size() < kMaxUrlHosts) facts_.url_hosts.emplace_back(host);
}

void MessageScan::on_attachment_data(const mime::PartInfo& part, std::string_view decoded) {
  stream_data(Target::kAttachmentContent, part.index, decoded);
}

void MessageScan::on_archive_member(const mime::PartInfo&, const mime::ArchiveMember& member) {
  // A file inside an archive is an attachment too: the name rules (program
  // extensions, double extensions) apply to it as to any attached file.
  scan_string(rules_->db(Target::kAttachmentName), member.name);
  scan_string(rules_->db(Target::kArchiveMember), member.name);
  ++facts_.archive_members;
  if (member.encrypted && facts_.encrypted_member.empty())
    facts_.encrypted_member = fmt::format("{} {}", member.format, capped(member.name));
}

void MessageScan::on_part_end(const mime::PartInfo& part, std::string_view detected_type) {
  if (part.is_multipart) return;
  tokens_->end_text();
  close_stream(Target::kText);
  close_stream(Target::kHtml);
  close_stream(Target::kAttachmentContent);
  if (part.is_attachment) {
    if (!detected_type.empty() && detected_type != part.content_type)
      scan_string(rules_->db(Target::kAttachmentType), detected_type);
    tokens_->add_attachment(part.filename, detected_type);
  }
}

void MessageScan::on_raw_body(std::string_view bytes) { stream_data(Target::kRaw, 0, bytes); }

void MessageScan::on_limit(mime::LimitHit what) {
  if (std::find(limits_hit_.begin(), limits_hit_.end(), what) == limits_hit_.end()) limits_hit_.push_back(what);
}

namespace {

// Whether a built-in rule fires, and what it says.
bool builtin_fires(const std::vector<std::string>& b, const CheckResults& c, const MessageFacts& facts,
                   const std::vector<mime::LimitHit>& limits, uint64_t size, std::optional<double> bayes,
                   std::string& detail) {
  const std::string& name = b[0];
  if (name == "spf") {
    if (!c.spf || auth::to_string(c.spf->result) != b[1]) return false;
    detail = fmt::format("spf={} domain={}", b[1], c.spf->domain);
    return true;
  }
  if (name == "dkim") {
    if (!c.dkim) return false;
    bool any_pass = std::any_of(c.dkim->begin(), c.dkim->end(),
                                [](const dkim::DkimVerdict& v) { return v.status == dkim::DkimStatus::kPass; });
    bool fires = b[1] == "pass" ? any_pass : b[1] == "fail" ? (!c.dkim->empty() && !any_pass) : c.dkim->empty();
    if (fires && !c.dkim->empty()) detail = fmt::format("d={} {}", c.dkim->front().domain, c.dkim->front().detail);
    return fires;
  }
  if (name == "dkim-aligned") {
    // With two From fields a signature may cover one and the reader see the
    // other: no signature vouches for "the" From domain.
    if (!c.dkim || facts.from_domain.empty() || facts.from_fields > 1) return false;
    std::string org = auth::organisational_domain(facts.from_domain);
    for (const auto& v : *c.dkim) {
      if (v.status == dkim::DkimStatus::kPass && auth::organisational_domain(to_lower(v.domain)) == org) {
        detail = fmt::format("d={}", v.domain);
        return true;
      }
    }
    return false;
  }
  if (name == "dmarc") {
    if (!c.dmarc) return false;
    if (b[1] == "fail") {
      if (c.dmarc->result != auth::DmarcResult::kFail || auth::to_string(c.dmarc->policy) != b[2]) return false;
    } else if (auth::to_string(c.dmarc->result) != b[1]) {
      return false;
    }
    detail = fmt::format("from={} {}", c.dmarc->from_domain, c.dmarc->detail);
    return true;
  }
  if (name == "dnsbl" || name == "uribl") {
    const auto& hits = name == "dnsbl" ? c.dnsbl : c.uribl;
    if (!hits) return false;
    for (const auto& h : *hits) {
      if (iequals(h.zone, b[1])) {
        detail = fmt::format("{} {}", h.listed, h.answer);
        return true;
      }
    }
    return false;
  }
  if (name == "helo") {
    if (!c.helo || c.helo->temp_error) return false;
    const auto& h = *c.helo;
    if (b[1] == "ip-literal") return h.helo_is_ip_literal;
    if (b[1] == "bad-syntax") return h.helo_syntax_bad;
    if (b[1] == "no-resolve") return !h.helo_is_ip_literal && !h.helo_syntax_bad && !h.helo_resolves;
    if (b[1] == "mismatch") return h.helo_resolves && !h.helo_matches_client;
    return false;
  }
  if (name == "rdns") {
    if (!c.helo || c.helo->temp_error) return false;
    if (b[1] == "none") return !c.helo->rdns_present;
    if (b[1] == "unconfirmed") return c.helo->rdns_present && !c.helo->rdns_confirmed;
    return false;
  }
  if (name == "bayes") {
    if (!bayes) return false;
    double lo = std::stod(b[1]), hi = std::stod(b[2]);
    bool fires = *bayes >= lo && (*bayes < hi || (hi >= 1.0 && *bayes <= 1.0));
    if (fires) detail = fmt::format("p={:.4f}", *bayes);
    return fires;
  }
  if (name == "mime-limit") {
    for (auto l : limits)
      if (mime::to_string(l) == b[1]) return true;
    return false;
  }
  if (name == "size") {
    double lo = std::stod(b[1]), hi = std::stod(b[2]);
    return static_cast<double>(size) >= lo && static_cast<double>(size) < hi;
  }
  if (name == "from") {
    if (b[1] != "multiple" || facts.from_fields < 2) return false;
    detail = fmt::format("{} From fields", facts.from_fields);
    return true;
  }
  if (name == "archive") {
    if (b[1] != "encrypted" || facts.encrypted_member.empty()) return false;
    detail = facts.encrypted_member;
    return true;
  }
  return false;
}

}  // namespace

ScanResult MessageScan::result(const CheckResults& checks, const bayes::Model* model) const {
  const RuleSet& set = rules_->rules();
  std::vector<bool> fired(fired_.begin(), fired_.end());
  std::vector<std::string> details(set.rules.size());
  ScanResult out;
  if (model) {
    auto cls = model->classify(tokens_->hashes());
    if (cls.trained) out.bayes = cls.spam_probability;
  }
  for (uint32_t i : rules_->builtins())
    fired[i] = builtin_fires(set.rules[i].builtin, checks, facts_, limits_hit_, size_, out.bayes, details[i]);
  for (uint32_t i : set.combine_order) fired[i] = evaluate(set.programs[i], fired);

  for (uint32_t i = 0; i < set.rules.size(); ++i) {
    if (!fired[i] || set.rules[i].score == 0) continue;
    out.score += set.rules[i].score;
    out.reasons.push_back({set.rules[i].id, set.rules[i].score, std::move(details[i])});
  }
  // Scores are sums of decimals: round so 5.999999 does not miss a 6 threshold.
  out.score = std::round(out.score * 1000.0) / 1000.0;
  std::stable_sort(out.reasons.begin(), out.reasons.end(),
                   [](const Reason& a, const Reason& b) { return std::fabs(a.score) > std::fabs(b.score); });
  return out;
}

std::string from_domain_of(std::string_view from) {
  std::string_view addr = from;
  size_t lt = from.rfind('<');
  if (lt != std::string_view::npos) {
    size_t gt = from.find('>', lt);
    addr = from.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1);
  }
  size_t at = addr.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string_view dom = addr.substr(at + 1);
  size_t end = dom.find_first_of(" \t>,;()\"");
  dom = dom.substr(0, end);
  while (!dom.empty() && dom.back() == '.') dom.remove_suffix(1);
  if (dom.empty() || dom.size() > 253) return {};
  return to_lower(dom);
}

}  // namespace mxguard::scan
