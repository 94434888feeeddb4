// Tracking: each decision the shard or its sessions take becomes an event for
// `mxguard track` (store/tracking.hpp). Events go to the shard's storage
// writer and ride its next commit: tracking never costs a session an fsync.
#include <fmt/format.h>

#include <algorithm>

#include "mxguard/core/log.hpp"
#include "shard_internal.hpp"

namespace mxguard::engine {

namespace {
// Connections turned away before a session exists can come by the thousand
// a second from one attacker; beyond this many a second they are counted,
// and the count goes into the next event tracked.
constexpr unsigned kTrackRefusalsPerSecond = 50;

std::string_view trim_crlf(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}
}  // namespace

uint64_t Shard::next_session_id() {
  if (session_base_ == 0) session_base_ = static_cast<uint64_t>(now_ms_) * 1000;
  return session_base_ + ++session_seq_;
}

// A session's reference: "c", its id in hex and the shard. The "c" keeps it
// apart from queue ids (hex microseconds, as session ids nearly are).
std::string Shard::session_reference(uint32_t slot) const {
  return fmt::format("c{:x}.s{}", conns_[slot]->session_id, index_);
}

void Shard::track(store::TrackEvent e) {
  e.shard = index_;
  if (e.time_ms == 0) e.time_ms = now_ms_;
  writer_->submit_event(std::move(e));
}

void Shard::track_refusal(uint32_t slot, const smtp::Refusal& r) {
  const Conn& c = *conns_[slot];
  metrics_.refused(refusal_for(r.decision));
  std::string client = c.client_ip.to_string();
  std::string reply = r.enhanced.empty() ? fmt::format("{} {}", r.code, r.text)
                                         : fmt::format("{} {} {}", r.code, r.enhanced, r.text);
  log::info("smtp.refused", "shard={} session={} client={} decision={} sender={} rcpt={} ref={} reply={}", index_,
            c.session_id, client, r.decision, log::q(r.sender), log::q(r.recipient), r.ref.empty() ? "-" : r.ref,
            log::q(reply));
  store::TrackEvent e;
  e.session = c.session_id;
  e.client_ip = std::move(client);
  e.helo = std::string(r.helo);
  e.sender = std::string(r.sender);
  if (!r.recipient.empty()) e.recipients.emplace_back(r.recipient);
  e.decision = std::string(r.decision);
  e.code = static_cast<unsigned>(r.code);
  e.reason = std::move(reply);
  e.ref_id = std::string(r.ref);
  track(std::move(e));
}

void Shard::track_connection_refused(const IpAddress& client, std::string_view decision, std::string_view reply) {
  if (now_ms_ - track_window_ms_ >= 1000) {
    track_window_ms_ = now_ms_;
    track_window_count_ = 0;
  }
  if (++track_window_count_ > kTrackRefusalsPerSecond) {
    ++track_suppressed_;
    return;
  }
  store::TrackEvent e;
  e.session = next_session_id();
  e.client_ip = client.to_string();
  e.decision = std::string(decision);
  e.code = 421;
  e.reason = std::string(trim_crlf(reply));
  if (track_suppressed_ > 0) {
    e.reason += fmt::format(" (and {} more connections refused, not tracked one by one)", track_suppressed_);
    track_suppressed_ = 0;
  }
  track(std::move(e));
}

void Shard::track_verdict(const Conn& c, const store::Envelope& env, std::string_view action, double score,
                          const std::string& reasons, const std::vector<std::string>& quarantined) {
  std::string why = fmt::format("score={:.2f} action={}{}{}", score, action, reasons.empty() ? "" : " rules=", reasons);
  auto event = [&](std::string decision, unsigned code, std::vector<std::string> rcpts) {
    store::TrackEvent e;
    e.session = c.session_id;
    e.client_ip = env.client_ip;
    e.helo = env.helo;
    e.sender = env.sender;
    e.recipients = std::move(rcpts);
    e.decision = std::move(decision);
    e.code = code;
    e.reason = why;
    // A refused message is not queued: its id is the reference the reply named.
    if (code >= 400) e.ref_id = env.id;
    else e.message_id = env.id;
    track(std::move(e));
  };
  if (action == "reject") return event("rejected", 550, env.recipients);
  if (action == "greylist") return event("greylisted", 451, env.recipients);
  std::vector<std::string> held, passed;
  for (const auto& r : env.recipients) (std::find(quarantined.begin(), quarantined.end(), r) != quarantined.end() ? held : passed).push_back(r);
  if (!passed.empty()) event("accepted", 250, std::move(passed));
  if (!held.empty()) event("quarantined", 250, std::move(held));
}

void Shard::track_delivery(const store::Envelope& env, std::string_view decision, unsigned code, std::string reason,
                           std::vector<std::string> recipients) {
  store::TrackEvent e;
  e.client_ip = env.client_ip;
  e.sender = env.sender;
  e.recipients = std::move(recipients);
  e.decision = std::string(decision);
  e.code = code;
  e.reason = std::move(reason);
  e.message_id = env.id;
  track(std::move(e));
}

}  // namespace mxguard::engine
