// The shard's side of scanning: content is fed to the scanner as it arrives;
// when the message is complete the DNS checks run on the shard's resolver
// (polled on the ring, never blocking), then the verdict decides the reply.
#include <poll.h>

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "mxguard/auth/checks.hpp"
#include "mxguard/core/log.hpp"
#include "mxguard/core/strings.hpp"
#include "mxguard/scan/auth_results.hpp"
#include "mxguard/scan/header_hygiene.hpp"
#include "mxguard/scan/verdict.hpp"
#include "shard_internal.hpp"

namespace mxguard::engine {

namespace {

scan::ScanOptions scan_options(const Config& cfg, bool dkim) {
  scan::ScanOptions o;
  o.dkim = dkim;
  o.limits.max_depth = cfg.scan.mime_max_depth;
  o.limits.max_parts = cfg.scan.mime_max_parts;
  o.limits.max_decoded = cfg.smtp.max_message_size * 2;
  return o;
}

std::string domain_of(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : to_lower(address.substr(at + 1));
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Removes the client's header fields that claim to be ours (RFC 8601 section
// 5), so the only ones the backend sees are those we add. Our Received line,
// above content_offset, is not touched. Returns how many were removed.
size_t drop_claimed_fields(smtp::FinishedMessage& m, std::string_view hostname) {
  const auto fields = scan::claimed_header_fields(std::string_view(m.data).substr(m.content_offset), hostname);
  for (auto it = fields.rbegin(); it != fields.rend(); ++it)
    m.data.erase(m.content_offset + it->begin, it->end - it->begin);
  if (!fields.empty()) m.envelope.size = m.data.size();
  return fields.size();
}

std::string feed_entry(const store::Envelope& env, unsigned shard, const scan::ScanResult& r, std::string_view action,
                       std::string_view subject) {
  nlohmann::ordered_json reasons = nlohmann::ordered_json::array();
  for (const auto& x : r.reasons) reasons.push_back({{"rule", x.rule}, {"score", x.score}});
  nlohmann::ordered_json j = {{"time_ms", env.received_ms},
                              {"id", env.id},
                              {"shard", shard},
                              {"client", env.client_ip},
                              {"helo", env.helo},
                              {"sender", env.sender},
                              {"recipients", env.recipients},
                              {"subject", std::string(subject)},
                              {"score", r.score},
                              {"action", std::string(action)},
                              {"reasons", reasons}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void Shard::refresh_rules() {
  if (!ctx_.rules) return;
  uint64_t gen = ctx_.rules->generation();
  if (gen == rules_generation_ && scanner_) return;
  auto rules = ctx_.rules->get();
  if (!rules) return;
  if (!scanner_) scanner_ = std::make_unique<scan::Scanner>(std::move(rules));
  else scanner_->swap(std::move(rules));
  rules_generation_ = gen;
}

void Shard::feed_scan(Conn& c) {
  if (!c.session) return;
  std::string_view id = c.session->content_message_id();
  if (id.empty()) return;
  if (!c.scan || c.scan_id != id) {
    refresh_rules();  // a new message starts with the newest rules
    if (!scanner_) return;
    c.scan = std::make_unique<scan::MessageScan>(*scanner_, scan_options(*ctx_.config, network_checks()));
    c.scan_id = std::string(id);
    c.scanned = 0;
  }
  std::string_view content = c.session->content();
  if (content.size() > c.scanned) {
    c.scan->feed(content.substr(c.scanned));
    c.scanned = content.size();
  }
}

void Shard::begin_verdict(uint32_t slot, std::unique_ptr<smtp::FinishedMessage> msg) {
  Conn& c = *conns_[slot];
  auto v = std::make_unique<Verdict>();
  v->serial = ++verdict_serial_;
  v->started_ms = now_ms_;
  v->started_ns = steady_ns();
  std::string_view content = std::string_view(msg->data).substr(msg->content_offset);
  if (!c.scan || c.scan_id != msg->envelope.id) {
    refresh_rules();
    c.scan.reset();
    c.scanned = 0;
    if (scanner_)
      c.scan = std::make_unique<scan::MessageScan>(*scanner_, scan_options(*ctx_.config, network_checks()));
  }
  if (c.scan) {
    if (content.size() > c.scanned) c.scan->feed(content.substr(c.scanned));
    c.scan->finish();
  }
  v->scan = std::move(c.scan);
  c.scan_id.clear();
  c.scanned = 0;
  v->msg = std::move(msg);
  c.verdict = std::move(v);
  if (network_checks() && c.verdict->scan) start_checks(slot, *c.verdict);
  if (c.verdict->outstanding == 0) finish_verdict(slot);
}

void Shard::start_checks(uint32_t slot, Verdict& v) {
  const store::Envelope& env = v.msg->envelope;
  auto ip = IpAddress::parse(env.client_ip);
  if (!ip) return;
  uint64_t tok = token(slot);
  uint32_t serial = v.serial;
  const ScanConfig& sc = ctx_.config->scan;
  // Looks the verdict up again when an answer arrives: the connection may
  // have closed, or moved on to a newer message, in the meantime.
  auto find = [this](uint64_t t, uint32_t s) -> Verdict* {
    Conn* c = lookup(static_cast<uint32_t>(t), static_cast<uint32_t>(t >> 32));
    if (!c || !c->verdict || c->verdict->serial != s) return nullptr;
    return c->verdict.get();
  };
  // DMARC needs SPF and DKIM first; whichever finishes last starts it.
  auto maybe_dmarc = [this, tok, serial, find](Verdict& x) {
    if (x.dmarc_started || !x.spf_done || !x.checks.dkim) return;
    const std::string& from = x.scan->facts().from_domain;
    if (from.empty()) return;
    x.dmarc_started = true;
    ++x.outstanding;
    auth::DmarcRequest req = scan::dmarc_request(x.scan->facts(), *x.checks.spf, *x.checks.dkim, x.msg->envelope.id);
    auth::check_dmarc(*resolver_, req, [this, tok, serial, find](auth::DmarcOutcome o) {
      if (Verdict* y = find(tok, serial)) {
        y->checks.dmarc = std::move(o);
        check_done(tok, serial);
      }
    });
  };

  ++v.outstanding;
  auth::check_spf(*resolver_, {*ip, env.sender, env.helo},
                  [this, tok, serial, find, maybe_dmarc](auth::SpfOutcome o) {
                    Verdict* x = find(tok, serial);
                    if (!x) return;
                    x->checks.spf = std::move(o);
                    x->spf_done = true;
                    maybe_dmarc(*x);
                    check_done(tok, serial);
                  });

  v.dkim_names = v.scan->dkim().key_names();
  v.dkim_answers.assign(v.dkim_names.size(), {});
  if (v.dkim_names.empty()) {
    // No key to fetch, but maybe signatures that did not parse: each is
    // still a permerror verdict, not "unsigned".
    v.checks.dkim = v.scan->dkim().verify_with({}, now_ms_ / 1000);
  }
  for (size_t i = 0; i < v.dkim_names.size(); ++i) {
    ++v.outstanding;
    ++v.dkim_pending;
    resolver_->txt(v.dkim_names[i], [this, tok, serial, find, maybe_dmarc, i](dns::Answer<dns::TxtRecord> a) {
      Verdict* x = find(tok, serial);
      if (!x) return;
      dkim::DkimKeyAnswer& ans = x->dkim_answers[i];
      if (a.status == dns::LookupStatus::kOk) {
        ans.kind = dkim::DkimKeyAnswer::Kind::kFound;
        for (const auto& r : a.records) ans.txt.push_back(r.text);
      } else if (a.status == dns::LookupStatus::kNxDomain || a.status == dns::LookupStatus::kNoData) {
        ans.kind = dkim::DkimKeyAnswer::Kind::kNotFound;
      } else {
        ans.kind = dkim::DkimKeyAnswer::Kind::kTempError;
      }
      if (--x->dkim_pending == 0) {
        int64_t now_unix = now_ms_ / 1000;
        x->checks.dkim = x->scan->dkim().verify_with(x->dkim_answers, now_unix);
        maybe_dmarc(*x);
      }
      check_done(tok, serial);
    });
  }

  ++v.outstanding;
  auth::check_helo(*resolver_, *ip, env.helo, [this, tok, serial, find](auth::HeloOutcome o) {
    if (Verdict* x = find(tok, serial)) {
      x->checks.helo = std::move(o);
      check_done(tok, serial);
    }
  });
  if (!sc.dnsbl_zones.empty()) {
    ++v.outstanding;
    auth::check_dnsbl_ip(*resolver_, *ip, sc.dnsbl_zones, [this, tok, serial, find](std::vector<auth::DnsblHit> h) {
      if (Verdict* x = find(tok, serial)) {
        x->checks.dnsbl = std::move(h);
        check_done(tok, serial);
      }
    });
  }
  if (!sc.uribl_zones.empty() && !v.scan->facts().url_hosts.empty()) {
    ++v.outstanding;
    auth::check_dnsbl_hosts(*resolver_, v.scan->facts().url_hosts, sc.uribl_zones,
                            [this, tok, serial, find](std::vector<auth::DnsblHit> h) {
                              if (Verdict* x = find(tok, serial)) {
                                x->checks.uribl = std::move(h);
                                check_done(tok, serial);
                              }
                            });
  }
}

void Shard::check_done(uint64_t tok, uint32_t serial) {
  uint32_t slot = static_cast<uint32_t>(tok);
  Conn* c = lookup(slot, static_cast<uint32_t>(tok >> 32));
  if (!c || !c->verdict || c->verdict->serial != serial) return;
  if (c->verdict->outstanding > 0 && --c->verdict->outstanding == 0) finish_verdict(slot);
}

void Shard::finish_verdict(uint32_t slot) {
  Conn& c = *conns_[slot];
  std::unique_ptr<Verdict> v = std::move(c.verdict);
  if (!v) return;
  // A client that left before its reply was never told 250: drop the message,
  // the sender still has it.
  if (c.closing || !c.session) return;
  if (size_t n = drop_claimed_fields(*v->msg, ctx_.config->hostname))
    log::info("scan.claimed_headers_removed", "id={} shard={} count={}", v->msg->envelope.id, index_, n);
  if (!v->scan) {
    track_verdict(c, v->msg->envelope, "deliver", 0, "not scanned", {});
    writer_->submit(token(slot), std::move(v->msg));
    after_session(slot);
    return;
  }
  store::Envelope& env = v->msg->envelope;
  scan::ScanResult r = v->scan->result(v->checks, ctx_.bayes);

  // Each recipient's domain has its own thresholds.
  bool all_allowed = contains(env.allowlisted, "*");
  std::vector<scan::RecipientVerdict> per;
  for (const auto& rcpt : env.recipients) {
    scan::Thresholds t;
    auto d = config_reader_->domain(domain_of(rcpt));
    if (d && *d) t = {(*d)->reject_threshold, (*d)->quarantine_threshold, (*d)->greylist_threshold};
    per.push_back({scan::action_for(r.score, t), all_allowed || contains(env.allowlisted, rcpt)});
  }
  scan::MessageVerdict mv = scan::combine(per);

  std::vector<std::pair<std::string, int64_t>> triplets;
  if (mv.reply == scan::Action::kGreylist && ctx_.greylist) {
    // Greylisted recipients whose triplet has waited long enough pass.
    auto ip = IpAddress::parse(env.client_ip);
    const ScanConfig& sc = ctx_.config->scan;
    bool all_pass = ip.has_value();
    for (size_t i = 0; ip && i < per.size(); ++i) {
      if (per[i].action != scan::Action::kGreylist) continue;
      std::string key = store::greylist_key(*ip, env.sender, env.recipients[i]);
      auto seen = ctx_.greylist->lookup(key);
      bool pass = seen && store::greylist_passes(*seen, now_ms_, sc.greylist_min_delay.count(), sc.greylist_window.count());
      if (pass) per[i].action = scan::Action::kDeliver;
      else all_pass = false;
      triplets.emplace_back(std::move(key), now_ms_);
    }
    if (all_pass) mv = scan::combine(per);
  } else if (mv.reply == scan::Action::kGreylist) {
    for (auto& p : per)
      if (p.action == scan::Action::kGreylist) p.action = scan::Action::kDeliver;
    mv = scan::combine(per);
  }

  std::string subject = v->scan->facts().subject;
  std::string reasons_log;
  for (const auto& x : r.reasons) reasons_log += fmt::format("{}{}={:g}", reasons_log.empty() ? "" : ",", x.rule, x.score);
  std::string_view action = scan::to_string(mv.reply);
  std::string feed = feed_entry(env, index_, r, action, subject);
  log::info("scan.verdict", "id={} shard={} score={:.2f} action={} checks_ms={} reasons={}", env.id, index_, r.score,
            action, now_ms_ - v->started_ms, log::q(reasons_log));
  metrics_.verdict(action, v->started_ns);

  if (mv.reply == scan::Action::kReject || mv.reply == scan::Action::kGreylist)
    track_verdict(c, env, action, r.score, reasons_log, {});
  if (mv.reply == scan::Action::kReject) {
    writer_->submit_side(std::move(feed), {});
    c.session->message_refused(550, "5.7.1", fmt::format("Message rejected as spam; reference {}", env.id));
    after_session(slot);
    return;
  }
  if (mv.reply == scan::Action::kGreylist) {
    writer_->submit_side(std::move(feed), std::move(triplets));
    c.session->message_refused(451, "4.7.1", fmt::format("Greylisted, please try again later; reference {}", env.id));
    after_session(slot);
    return;
  }
  if (!triplets.empty()) writer_->submit_side({}, std::move(triplets));

  env.scanned = true;
  env.score = r.score;
  env.action = std::string(action);
  for (const auto& x : r.reasons) env.reasons.push_back(fmt::format("{}={:g}", x.rule, x.score));
  for (size_t i = 0; i < mv.per_recipient.size() && i < env.recipients.size(); ++i)
    if (mv.per_recipient[i] == scan::Action::kQuarantine) env.quarantined.push_back(env.recipients[i]);
  // Our headers go under our Received line, above the client's content.
  std::string added =
      scan::authentication_results(ctx_.config->hostname, env.sender, env.helo, v->checks, v->scan->facts());
  added += fmt::format("X-MxGuard-Score: {:.2f} {}\r\n", r.score, action);
  v->msg->data.insert(v->msg->content_offset, added);
  env.size = v->msg->data.size();
  track_verdict(c, env, action, r.score, reasons_log, env.quarantined);
  writer_->submit(token(slot), std::move(v->msg), std::move(feed));
  after_session(slot);
}

void Shard::arm_resolver() {
  io_uring_sqe* s = sqe();
  io_uring_prep_poll_multishot(s, resolver_->fd(), POLLIN);
  io_uring_sqe_set_data64(s, make_ud(kResolver, 0, 0));
}

void Shard::on_resolver(int res, uint32_t flags) {
  if (res < 0 && res != -ECANCELED) log::error("dns.poll_failed", "shard={} error={}", index_, res);
  resolver_->process();
  if (!(flags & IORING_CQE_F_MORE) && !stopping_) arm_resolver();
}

}  // namespace mxguard::engine
