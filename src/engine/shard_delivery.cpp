// The shard's delivery side: due messages of its own spool go to each
// domain's backend over outbound connections on the shard's ring. The SMTP
// dialogue is delivery::ClientSession (pure); this file moves its bytes,
// runs TLS, resolves hosts, enforces timeouts and turns results into queue
// updates that the storage writer commits.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>

#include <fmt/format.h>

#include "mxguard/core/log.hpp"
#include "mxguard/core/strings.hpp"
#include "shard_internal.hpp"

namespace mxguard::engine {

namespace {

constexpr size_t kOutRecvBuffer = 16 * 1024;
constexpr int64_t kQueueScanMs = 1000;  // idle queue poll; console changes are seen within it

std::string domain_part(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : to_lower(address.substr(at + 1));
}

std::optional<delivery::TlsPolicy> tls_policy(std::string_view s) {
  if (s == "none") return delivery::TlsPolicy::kNone;
  if (s == "may") return delivery::TlsPolicy::kMay;
  if (s == "encrypt") return delivery::TlsPolicy::kEncrypt;
  if (s == "dane") return delivery::TlsPolicy::kDane;
  return std::nullopt;
}

// A literal address as a backend host: "192.0.2.7", "2001:db8::1" or "[2001:db8::1]".
std::optional<IpAddress> literal(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return IpAddress::parse(host);
}

socklen_t fill_sockaddr(const IpAddress& ip, uint16_t port, sockaddr_storage& sa) {
  std::memset(&sa, 0, sizeof sa);
  if (ip.v6) {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(sa);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    std::memcpy(&in6.sin6_addr, ip.bytes.data(), 16);
    return sizeof in6;
  }
  auto& in = reinterpret_cast<sockaddr_in&>(sa);
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  std::memcpy(&in.sin_addr, ip.bytes.data(), 4);
  return sizeof in;
}

std::string_view outcome_name(delivery::Outcome o) {
  switch (o) {
    case delivery::Outcome::kDelivered: return "sent";
    case delivery::Outcome::kDeferred: return "deferred";
    case delivery::Outcome::kFailed: return "bounced";
  }
  return "?";
}

}  // namespace

Shard::Outbound* Shard::out_lookup(uint32_t slot, uint32_t gen) {
  if (slot >= outs_.size()) return nullptr;
  Outbound* o = outs_[slot].get();
  if (!o->in_use || (o->gen & 0xffffffu) != gen) return nullptr;
  return o;
}

// Picks due messages from the spool while there is room. Runs from the tick;
// a message stays in busy_ from its pick until its result is committed, so
// the due index (which still lists it) never starts it twice.
void Shard::run_queue() {
  if (stopping_ || now_ms_ < next_queue_scan_ms_) return;
  next_queue_scan_ms_ = now_ms_ + kQueueScanMs;
  const size_t cap = ctx_.config->delivery.max_messages;
  if (deliveries_.size() >= cap) return;
  auto ids = writer_->spool().due(now_ms_, cap - deliveries_.size() + busy_.size());
  if (!ids) {
    log::error("queue.read_failed", "shard={} error={}", index_, log::q(ids.error()));
    return;
  }
  for (const std::string& id : *ids) {
    if (deliveries_.size() >= cap) break;
    if (busy_.count(id)) continue;
    start_delivery(id);
  }
}

constexpr size_t kFreshBacklogMax = 100'000;

void Shard::start_fresh(const std::string& id) {
  if (stopping_ || busy_.count(id)) return;
  if (deliveries_.size() >= ctx_.config->delivery.max_messages) {
    if (fresh_backlog_.size() < kFreshBacklogMax) fresh_backlog_.push_back(id);
    else next_queue_scan_ms_ = 0;  // the poll picks it up when there is room
    return;
  }
  start_delivery(id);
}

// A place in delivery freed: the oldest message that arrived while there
// was none takes it. Not re-entered (a message can finish inside
// start_delivery), so a long backlog never deepens the stack.
void Shard::refill() {
  if (refilling_) return;
  refilling_ = true;
  while (!stopping_ && !fresh_backlog_.empty() && deliveries_.size() < ctx_.config->delivery.max_messages) {
    std::string id = std::move(fresh_backlog_.front());
    fresh_backlog_.pop_front();
    if (!busy_.count(id)) start_delivery(id, true);
  }
  refilling_ = false;
}

// only_if_due: the id may be stale (the poll delivered and deferred it
// meanwhile), so an attempt not yet due is left to the queue poll.
void Shard::start_delivery(const std::string& id, bool only_if_due) {
  const store::Spool& spool = writer_->spool();
  auto env = spool.envelope(id);
  auto entry = spool.queue_entry(id);
  if (!env || !entry || !*env || !*entry) {
    if (!env || !entry)
      log::error("queue.read_failed", "shard={} id={} error={}", index_, id,
                 log::q(!env ? env.error() : entry.error()));
    return;  // deleted meanwhile: its due key went with it
  }
  if (only_if_due && (*entry)->next_attempt_ms > now_ms_) return;
  auto data = spool.read_message(id);
  if (!data || !*data) {
    log::error("queue.read_failed", "shard={} id={} error={}", index_, id, log::q(data ? "no body" : data.error()));
    return;
  }
  busy_.insert(id);
  Delivery& d = deliveries_[id];
  d.envelope = std::move(**env);
  d.data = std::make_shared<const std::string>(std::move(**data));
  d.update.id = id;
  const store::QueueEntry& q = **entry;
  std::vector<store::QueueRecipient> pending = store::pending_recipients(d.envelope, q);
  d.expired = now_ms_ - d.envelope.received_ms >= ctx_.config->delivery.max_queue_lifetime.count();

  if (q.bounce_requested || d.expired) {
    for (const auto& r : pending) {
      d.update.done.push_back(r.address);
      if (d.envelope.sender.empty()) continue;
      std::string diag = r.last_error.empty() ? std::string("no delivery attempt succeeded") : r.last_error;
      if (q.bounce_requested) d.bounces.push_back({r.address, "5.0.0", "x-mxguard; returned to the sender by the operator", ""});
      else d.bounces.push_back({r.address, "4.4.7", fmt::format("x-mxguard; {}", diag), ""});
    }
    log::info("delivery.returned", "id={} shard={} recipients={} reason={}", id, index_, pending.size(),
              q.bounce_requested ? "operator" : "expired");
    track_delivery(d.envelope, "returned", 0,
                   q.bounce_requested ? "returned to the sender by the operator" : "expired in the queue",
                   [&] {
                     std::vector<std::string> v;
                     for (const auto& r : pending) v.push_back(r.address);
                     return v;
                   }());
    metrics_.delivery(delivery::Outcome::kFailed, pending.size());
    finish_delivery(id);
    return;
  }

  // One job per route: recipients of one domain share a backend.
  std::vector<std::unique_ptr<Job>> jobs;
  for (const auto& r : pending) {
    std::string domain = domain_part(r.address);
    std::string why;
    auto route = route_for(domain, d.envelope, why);
    if (!route) {
      d.update.deferred.push_back({r.address, 0, why});
      log::warn("delivery.deferred", "id={} shard={} rcpt={} reason={}", id, index_, log::q(r.address), log::q(why));
      track_delivery(d.envelope, "deferred", 0, why, {r.address});
      metrics_.delivery(delivery::Outcome::kDeferred);
      continue;
    }
    auto it = std::find_if(jobs.begin(), jobs.end(), [&](const auto& j) { return j->route.key == route->key; });
    if (it == jobs.end()) {
      auto j = std::make_unique<Job>();
      j->id = id;
      j->route = std::move(*route);
      j->data = d.data;
      jobs.push_back(std::move(j));
      it = jobs.end() - 1;
    }
    (*it)->recipients.push_back(r.address);
  }
  d.groups_left = static_cast<unsigned>(jobs.size());
  if (jobs.empty()) {
    finish_delivery(id);
    return;
  }
  for (auto& j : jobs) dispatch(std::move(j));
}

// The domain's settings are read now, so a console change applies to the
// next attempt. Mail we generate ourselves (DSNs: null sender, no client)
// to a domain we do not serve goes to that domain's MX hosts.
std::optional<Shard::Route> Shard::route_for(const std::string& domain, const store::Envelope& e, std::string& why) {
  auto dom = config_reader_->domain(domain);
  if (!dom) {
    why = fmt::format("configuration store unavailable: {}", dom.error());
    return std::nullopt;
  }
  Route r;
  if (!*dom || (*dom)->backend_host.empty()) {
    if (!(e.sender.empty() && e.client_ip.empty())) {
      why = fmt::format("domain {} is not served here (removed?)", domain);
      return std::nullopt;
    }
    r.mx = true;
    r.host = domain;
    r.port = ctx_.config->delivery.mx_port;
    r.tls = delivery::TlsPolicy::kMay;
    r.key = "mx:" + domain;
    return r;
  }
  const store::Domain& d = **dom;
  r.host = d.backend_host;
  r.port = d.backend_port;
  r.implicit_tls = d.backend_port == 465;
  r.tls = tls_policy(d.tls_policy).value_or(delivery::TlsPolicy::kMay);
  if (d.trust == "auth") {
    r.auth_user = d.auth_user;
    r.auth_password = d.auth_password;
  }
  // Connections are shared by jobs of one key, cached ones included: a
  // changed password (hashed into the key) never rides an old login.
  r.key = fmt::format("{}|{}|{}|{}|{}|{:x}", to_lower(r.host), r.port, d.tls_policy, d.trust, r.auth_user,
                      std::hash<std::string>{}(r.auth_password));
  return r;
}

delivery::ClientJob Shard::client_job(const Job& job) const {
  delivery::ClientJob c;
  if (job.probe) {
    c.helo = ctx_.config->hostname;
    c.recipients = job.recipients;
    c.tls = job.route.tls;
    c.implicit_tls = job.route.implicit_tls;
    c.auth_user = job.route.auth_user;
    c.auth_password = job.route.auth_password;
    c.probe = true;
    return c;
  }
  const Delivery& d = deliveries_.at(job.id);
  c.helo = ctx_.config->hostname;
  c.sender = d.envelope.sender;
  c.recipients = job.recipients;
  c.size = job.data->size();
  c.body_8bit = d.envelope.body_8bit;
  c.smtputf8 = d.envelope.smtputf8;
  c.tls = job.route.tls;
  c.implicit_tls = job.route.implicit_tls;
  c.auth_user = job.route.auth_user;
  c.auth_password = job.route.auth_password;
  c.message = *job.data;
  return c;
}

// A job goes to an idle connection of its route, else a new connection
// within the route's cap, else waits for one of them.
void Shard::dispatch(std::unique_ptr<Job> job) {
  RouteState& rs = routes_[job->route.key];
  if (!rs.idle.empty()) {
    uint32_t slot = rs.idle.back();  // the most recently used: the others may time out
    rs.idle.pop_back();
    reuse_outbound(slot, std::move(job));
  } else if (rs.connections < ctx_.config->delivery.max_per_backend) {
    ++rs.connections;
    open_outbound(std::move(job));
  } else {
    rs.waiting.push_back(std::move(job));
  }
}

void Shard::open_outbound(std::unique_ptr<Job> job) {
  uint32_t slot;
  if (!free_outs_.empty()) {
    slot = free_outs_.back();
    free_outs_.pop_back();
  } else {
    slot = static_cast<uint32_t>(outs_.size());
    outs_.push_back(std::make_unique<Outbound>());
  }
  Outbound& o = *outs_[slot];
  o.in_use = true;
  o.phase = Outbound::Phase::kResolving;
  o.route = job->route;
  o.job = std::move(job);
  o.addrs.clear();
  o.tlsa.clear();
  o.next_addr = 0;
  o.peer = o.route.host;
  o.last_error.clear();
  o.closing = o.connect_inflight = o.recv_inflight = o.send_inflight = false;
  o.deadline_ms = o.job->probe ? now_ms_ + ctx_.config->delivery.callout_timeout.count()
                                : now_ms_ + ctx_.config->delivery.connect_timeout.count() + ctx_.config->dns.timeout.count();
  ++outs_active_;
  resolve_outbound(slot);
}

// Finds the addresses to try: a literal as is, a backend name by A/AAAA, an
// MX route by the domain's MX set in preference order (the domain's own
// addresses when it has no MX, RFC 5321 5.1).
void Shard::resolve_outbound(uint32_t slot) {
  Outbound& o = *outs_[slot];
  if (auto ip = literal(o.route.host)) {
    o.addrs.push_back(*ip);
    if (o.route.tls == delivery::TlsPolicy::kDane) {
      // No TLSA records exist for an address literal (RFC 7672 2.2.3).
      log::warn("delivery.dane_unusable", "id={} shard={} backend={} reason=address_literal", o.job->id, index_,
                o.route.host);
      o.route.tls = delivery::TlsPolicy::kMay;
    }
    connect_next(slot);
    return;
  }
  if (!resolver_) {
    o.last_error = fmt::format("cannot resolve {}: no DNS servers configured (dns.servers)", o.route.host);
    o.addrs.clear();
    connect_next(slot);
    return;
  }
  uint32_t gen = o.gen & 0xffffffu;
  auto got_addresses = [this, slot, gen](dns::Answer<IpAddress> a) {
    Outbound* p = out_lookup(slot, gen);
    if (!p) return;
    if (a.ok()) {
      // IPv4 first: loopback test set-ups and most backends answer there.
      std::stable_sort(a.records.begin(), a.records.end(), [](const IpAddress& x, const IpAddress& y) {
        return !x.v6 && y.v6;
      });
      p->addrs = std::move(a.records);
    } else {
      p->last_error = fmt::format("cannot resolve {}: {}", p->peer, dns::to_string(a.status));
    }
    if (p->route.tls == delivery::TlsPolicy::kDane && !p->addrs.empty()) lookup_tlsa(slot);
    else connect_next(slot);
  };
  if (!o.route.mx) {
    resolver_->addresses(o.route.host, std::move(got_addresses));
    return;
  }
  resolver_->mx(o.route.host, [this, slot, gen, got_addresses](dns::Answer<dns::MxRecord> a) mutable {
    Outbound* p = out_lookup(slot, gen);
    if (!p) return;
    if (a.status == dns::LookupStatus::kNxDomain || a.status == dns::LookupStatus::kNoData) {
      resolver_->addresses(p->route.host, std::move(got_addresses));
      return;
    }
    if (!a.ok()) {
      p->last_error = fmt::format("cannot resolve MX of {}: {}", p->route.host, dns::to_string(a.status));
      connect_next(slot);
      return;
    }
    std::stable_sort(a.records.begin(), a.records.end(),
                     [](const dns::MxRecord& x, const dns::MxRecord& y) { return x.preference < y.preference; });
    if (a.records.front().is_null()) {
      std::string why = fmt::format("domain {} accepts no mail (null MX)", p->route.host);
      std::unique_ptr<Job> job = std::move(p->job);
      close_outbound(slot);
      fail_job(std::move(job), delivery::Outcome::kFailed, "5.1.10", why);
      return;
    }
    // The most preferred host; its addresses in turn. Enough for the DSNs
    // this route carries.
    p->peer = a.records.front().host;
    resolver_->addresses(a.records.front().host, std::move(got_addresses));
  });
}

// tls=dane (RFC 7672): TLSA records at _PORT._tcp.HOST. A secure answer with
// usable records makes TLS mandatory and authenticated by them; a secure "no
// records" (or an unsigned zone) leaves opportunistic TLS; a failed or bogus
// lookup defers, since it may hide records an attacker removed.
void Shard::lookup_tlsa(uint32_t slot) {
  Outbound& o = *outs_[slot];
  uint32_t gen = o.gen & 0xffffffu;
  std::string host = o.route.mx ? o.peer.substr(0, o.peer.find('[')) : o.route.host;
  std::string name = fmt::format("_{}._tcp.{}", o.route.port, host);
  resolver_->tlsa(name, [this, slot, gen, name, host](dns::Answer<dns::TlsaRecord> a) {
    Outbound* p = out_lookup(slot, gen);
    if (!p) return;
    bool no_records = a.status == dns::LookupStatus::kNxDomain || a.status == dns::LookupStatus::kNoData;
    if (!a.ok() && !no_records) {
      std::string why = fmt::format("TLSA lookup for {} failed: {}{}{}", name, dns::to_string(a.status),
                                    a.error.empty() ? "" : ": ", a.error);
      std::unique_ptr<Job> job = std::move(p->job);
      close_outbound(slot);
      fail_job(std::move(job), delivery::Outcome::kDeferred, "4.7.5", why);
      return;
    }
    std::vector<TlsaRecord> usable;
    if (a.ok() && a.secure)
      for (const auto& r : a.records)
        if ((r.usage == 2 || r.usage == 3) && r.selector <= 1 && r.matching_type <= 2)
          usable.push_back({r.usage, r.selector, r.matching_type, r.data});
    if (usable.empty()) {
      log::info("delivery.dane_none", "id={} shard={} name={} secure={} records={}", p->job ? p->job->id : "-",
                index_, name, a.secure ? "yes" : "no", a.records.size());
      p->route.tls = delivery::TlsPolicy::kMay;  // no authenticated TLSA: opportunistic TLS (RFC 7672 2.2)
    } else {
      p->tlsa = std::move(usable);
    }
    connect_next(slot);
  });
}

TlsClientOptions Shard::tls_options(const Outbound& o) const {
  TlsClientOptions opts;
  std::string host = o.route.mx ? o.peer.substr(0, o.peer.find('[')) : o.route.host;
  if (!literal(host)) opts.sni = host;
  opts.tlsa = o.tlsa;
  opts.dane_name = host;
  return opts;
}

// The connection's effective TLS policy (dane may have become may) applies
// to every job it carries.
delivery::ClientJob Shard::client_job_for(const Outbound& o, const Job& job) const {
  delivery::ClientJob c = client_job(job);
  c.tls = o.route.tls;
  return c;
}

// Tries the next address, or gives the job up as deferred when none is left.
void Shard::connect_next(uint32_t slot) {
  Outbound& o = *outs_[slot];
  if (o.fd >= 0) {
    ::close(o.fd);
    o.fd = -1;
  }
  if (o.next_addr >= o.addrs.size()) {
    std::string why = o.last_error.empty() ? fmt::format("no address for {}", o.peer) : o.last_error;
    std::unique_ptr<Job> job = std::move(o.job);
    close_outbound(slot);
    fail_job(std::move(job), delivery::Outcome::kDeferred, "4.4.1", why);
    return;
  }
  const IpAddress& ip = o.addrs[o.next_addr++];
  o.sa_len = fill_sockaddr(ip, o.route.port, o.sa);
  o.peer = fmt::format("{}[{}]:{}", o.route.mx ? o.peer.substr(0, o.peer.find('[')) : o.route.host, ip.to_string(),
                       o.route.port);
  o.fd = ::socket(ip.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (o.fd < 0) {
    o.last_error = fmt::format("socket: {}", std::strerror(errno));
    connect_next(slot);
    return;
  }
  int one = 1;
  setsockopt(o.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  o.phase = Outbound::Phase::kConnecting;
  o.deadline_ms = out_timeout(o, true);
  io_uring_sqe* s = sqe();
  io_uring_prep_connect(s, o.fd, reinterpret_cast<sockaddr*>(&o.sa), o.sa_len);
  io_uring_sqe_set_data64(s, make_ud(kOutConnect, o.gen, slot));
  o.connect_inflight = true;
}

void Shard::on_out_connect(uint32_t slot, uint32_t gen, int res) {
  Outbound* o = out_lookup(slot, gen);
  if (!o) return;
  o->connect_inflight = false;
  if (o->closing) {
    maybe_release_outbound(slot);
    return;
  }
  if (res < 0) {
    o->last_error = fmt::format("cannot connect to {}: {}", o->peer,
                                res == -ECANCELED ? "timed out" : std::strerror(-res));
    log::info("delivery.connect_failed", "id={} shard={} peer={} error={}", o->job ? o->job->id : std::string("-"),
              index_, o->peer, log::q(o->last_error));
    connect_next(slot);
    return;
  }
  o->phase = Outbound::Phase::kTalking;
  o->deadline_ms = out_timeout(*o, false);
  o->session = std::make_unique<delivery::ClientSession>(client_job_for(*o, *o->job));
  if (!o->rbuf) o->rbuf = std::make_unique<char[]>(kOutRecvBuffer);
  if (o->route.implicit_tls) {
    o->tls = std::make_unique<TlsChannel>(client_tls_.get(), tls_options(*o));
    o->tls->start();
  }
  arm_out_recv(slot);
  pump_outbound(slot);
}

void Shard::arm_out_recv(uint32_t slot) {
  Outbound& o = *outs_[slot];
  io_uring_sqe* s = sqe();
  io_uring_prep_recv(s, o.fd, o.rbuf.get(), kOutRecvBuffer, 0);
  io_uring_sqe_set_data64(s, make_ud(kOutRecv, o.gen, slot));
  o.recv_inflight = true;
}

void Shard::on_out_recv(uint32_t slot, uint32_t gen, int res) {
  Outbound* o = out_lookup(slot, gen);
  if (!o) return;
  o->recv_inflight = false;
  if (o->closing) {
    maybe_release_outbound(slot);
    return;
  }
  std::string_view data(o->rbuf.get(), res > 0 ? static_cast<size_t>(res) : 0);
  if (o->phase == Outbound::Phase::kIdle) {
    idle_received(slot, data);
    return;
  }
  if (res <= 0) {
    o->session->connection_lost(res == 0 ? "connection closed by the backend" : std::strerror(-res));
    pump_outbound(slot);
    return;
  }
  o->deadline_ms = out_timeout(*o, false);
  if (o->tls) {
    std::string plain;
    bool handshaking = !o->tls->established();
    auto st = o->tls->receive(data, plain);
    if (st == TlsChannel::Status::kError) {
      if (handshaking) o->session->tls_failed(o->tls->last_error());
      else o->session->connection_lost("TLS error: " + o->tls->last_error());
      o->tls->drain(o->out);
      pump_outbound(slot);
      return;
    }
    if (st == TlsChannel::Status::kHandshakeDone) o->session->tls_established(o->tls->dane_verified());
    if (!plain.empty()) o->session->receive(plain);
    if (st == TlsChannel::Status::kClosed) o->session->connection_lost("TLS session closed by the backend");
  } else {
    o->session->receive(data);
  }
  if (!o->closing && !o->recv_inflight && !(o->session->finished() && o->session->wants_close())) arm_out_recv(slot);
  pump_outbound(slot);
}

// An idle connection heard from its backend. TLS records that carry no
// data (TLS 1.3 session tickets) keep it; anything else (a 421, EOF, an
// error) ends it: there is no transaction to fail.
void Shard::idle_received(uint32_t slot, std::string_view data) {
  Outbound& o = *outs_[slot];
  if (!data.empty() && o.tls) {
    std::string plain;
    auto st = o.tls->receive(data, plain);
    if (st != TlsChannel::Status::kError && st != TlsChannel::Status::kClosed && plain.empty()) {
      arm_out_recv(slot);
      return;
    }
  }
  log::debug("delivery.idle_closed", "shard={} peer={} reason={}", index_, o.peer,
             data.empty() ? "closed by the backend" : "unexpected data");
  close_outbound(slot);
}

// Moves the session's output to the wire (through TLS once it is up),
// starts STARTTLS when asked, feeds the message in pieces, and acts on the
// end of a transaction.
void Shard::pump_outbound(uint32_t slot) {
  Outbound& o = *outs_[slot];
  if (o.closing || !o.session) return;
  delivery::ClientSession& s = *o.session;
  while (true) {
    move_output(o);
    if (s.wants_tls() && !o.tls) {
      o.tls = std::make_unique<TlsChannel>(client_tls_.get(), tls_options(o));
      o.tls->start();
      o.tls->drain(o.out);
    }
    // The next piece of the message only when the previous one is on its
    // way, so a large message never sits in memory twice.
    if (o.out.empty() && !o.send_inflight && !s.finished()) {
      size_t before = s.output().size();
      s.pump();
      if (s.output().size() > before) continue;
    }
    break;
  }
  send_out(slot);
  if (s.finished()) job_finished(slot);
}

// The session's output to the wire buffer: in clear, or through TLS once it
// is up (bytes produced during the handshake wait for it).
void Shard::move_output(Outbound& o) {
  std::string& produced = o.session->output();
  if (!produced.empty()) {
    if (!o.tls) o.out.append(produced);
    else if (o.tls->established() && !o.tls->send(produced)) o.session->connection_lost("TLS write failed");
    produced.clear();
  }
  if (o.tls) o.tls->drain(o.out);
}

// Starts sending what is buffered, unless a send is in flight (one at a time).
void Shard::send_out(uint32_t slot) {
  Outbound& o = *outs_[slot];
  if (o.out.empty() || o.send_inflight) return;
  o.sending.swap(o.out);
  o.out.clear();
  o.send_off = 0;
  arm_out_send(slot);
}

void Shard::arm_out_send(uint32_t slot) {
  Outbound& o = *outs_[slot];
  io_uring_sqe* sq = sqe();
  io_uring_prep_send(sq, o.fd, o.sending.data() + o.send_off, o.sending.size() - o.send_off, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sq, make_ud(kOutSend, o.gen, slot));
  o.send_inflight = true;
}

void Shard::on_out_send(uint32_t slot, uint32_t gen, int res) {
  Outbound* o = out_lookup(slot, gen);
  if (!o) return;
  o->send_inflight = false;
  if (o->closing) {
    maybe_release_outbound(slot);
    return;
  }
  if (res < 0) {
    o->sending.clear();
    o->out.clear();
    o->session->connection_lost(fmt::format("send failed: {}", std::strerror(-res)));
    pump_outbound(slot);
    return;
  }
  o->deadline_ms = out_timeout(*o, false);
  o->send_off += static_cast<size_t>(res);
  if (o->send_off < o->sending.size()) {
    arm_out_send(slot);
    return;
  }
  o->sending.clear();
  if (o->sending.capacity() > (1u << 20)) std::string().swap(o->sending);
  pump_outbound(slot);
}

// The session has a result for every recipient of its job: record them,
// then reuse the connection for the next job of the route or say goodbye.
void Shard::job_finished(uint32_t slot) {
  Outbound& o = *outs_[slot];
  delivery::ClientSession& s = *o.session;
  if (o.job && o.job->probe) {
    std::unique_ptr<Job> job = std::move(o.job);
    callout_done(*job, s.results());
  } else if (o.job) {
    std::unique_ptr<Job> job = std::move(o.job);
    record_results(*job, s.results(), o.peer);
    group_done(job->id);
  }
  RouteState& rs = routes_[o.route.key];
  if (s.reusable() && !stopping_ && !rs.waiting.empty()) {
    std::unique_ptr<Job> next = std::move(rs.waiting.front());
    rs.waiting.pop_front();
    reuse_outbound(slot, std::move(next));
    return;
  }
  if (s.reusable() && !stopping_ && ctx_.config->delivery.connection_cache_time.count() > 0 && o.recv_inflight) {
    park_outbound(slot);
    return;
  }
  quit_outbound(slot);
}

// The next transaction on a connection that finished its previous one.
void Shard::reuse_outbound(uint32_t slot, std::unique_ptr<Job> job) {
  Outbound& o = *outs_[slot];
  o.phase = Outbound::Phase::kTalking;
  o.job = std::move(job);
  o.deadline_ms = out_timeout(o, false);
  o.session->next(client_job_for(o, *o.job));
  pump_outbound(slot);
}

// Nothing waits for the route: the connection stays open for
// delivery.connection_cache_time, so mail arriving in a steady stream does
// not pay a new connection (and greeting, EHLO, TLS) per message. Its
// receive stays armed: a backend that closes or times it out is noticed.
void Shard::park_outbound(uint32_t slot) {
  Outbound& o = *outs_[slot];
  o.phase = Outbound::Phase::kIdle;
  o.deadline_ms = now_ms_ + ctx_.config->delivery.connection_cache_time.count();
  routes_[o.route.key].idle.push_back(slot);
}

void Shard::quit_outbound(uint32_t slot) {
  Outbound& o = *outs_[slot];
  if (!o.session->wants_close()) o.session->quit();
  move_output(o);
  send_out(slot);
  close_outbound(slot);
}

void Shard::record_results(const Job& job, const std::vector<delivery::RcptResult>& results, std::string_view peer) {
  auto it = deliveries_.find(job.id);
  if (it == deliveries_.end()) return;
  Delivery& d = it->second;
  for (const auto& r : results) {
    std::string reply = r.code ? fmt::format("{} {}", r.code, r.text)
                               : (r.enhanced.empty() ? r.text : fmt::format("{} {}", r.enhanced, r.text));
    log::info("delivery.result", "id={} shard={} rcpt={} status={} peer={} reply={}", job.id, index_,
              log::q(r.recipient), outcome_name(r.outcome), log::q(peer), log::q(reply));
    track_delivery(d.envelope, delivery_name(r.outcome), static_cast<unsigned>(r.code),
                   peer.empty() ? reply : fmt::format("{}: {}", peer, reply), {r.recipient});
    metrics_.delivery(r.outcome);
    switch (r.outcome) {
      case delivery::Outcome::kDelivered: d.update.done.push_back(r.recipient); break;
      case delivery::Outcome::kFailed:
        d.update.done.push_back(r.recipient);
        if (!d.envelope.sender.empty())
          d.bounces.push_back({r.recipient, r.enhanced.empty() ? "5.0.0" : r.enhanced,
                               r.code ? fmt::format("smtp; {}", reply) : fmt::format("x-mxguard; {}", reply),
                               std::string(peer)});
        break;
      case delivery::Outcome::kDeferred:
        d.update.deferred.push_back({r.recipient, r.code, std::string(peer) + ": " + reply});
        break;
    }
  }
}

// A job that never reached a backend: every recipient gets the same result.
void Shard::fail_job(std::unique_ptr<Job> job, delivery::Outcome outcome, std::string_view enhanced,
                     std::string_view why) {
  if (!job) return;
  std::vector<delivery::RcptResult> results;
  for (const auto& r : job->recipients) results.push_back({r, outcome, 0, std::string(enhanced), std::string(why)});
  if (job->probe) {
    callout_done(*job, results);
    return;
  }
  record_results(*job, results, job->route.host);
  group_done(job->id);
}

// One group of a message has its results; the last one finishes the message.
void Shard::group_done(const std::string& id) {
  if (auto it = deliveries_.find(id); it != deliveries_.end() && --it->second.groups_left == 0) finish_delivery(id);
}

// Every group answered: one queue update (and at most one DSN) per message,
// committed by the storage writer.
void Shard::finish_delivery(const std::string& id) {
  auto it = deliveries_.find(id);
  if (it == deliveries_.end()) return;
  Delivery& d = it->second;
  const auto& cfg = ctx_.config->delivery;
  // Deferred recipients past the queue lifetime go back to the sender now.
  if (!d.update.deferred.empty() && now_ms_ - d.envelope.received_ms >= cfg.max_queue_lifetime.count()) {
    for (const auto& r : d.update.deferred) {
      d.update.done.push_back(r.address);
      if (!d.envelope.sender.empty())
        d.bounces.push_back({r.address, "4.4.7", fmt::format("x-mxguard; {}", r.last_error), ""});
    }
    d.update.deferred.clear();
    d.expired = true;
  }
  // A little jitter spreads retries of messages that failed together.
  jitter_state_ = jitter_state_ * 6364136223846793005ULL + 1442695040888963407ULL + static_cast<uint64_t>(now_ms_);
  int64_t interval = cfg.retry_interval.count();
  int64_t jitter = interval / 10 > 0 ? static_cast<int64_t>((jitter_state_ >> 33) % static_cast<uint64_t>(interval / 10)) : 0;
  d.update.next_attempt_ms = now_ms_ + interval + jitter;

  std::vector<store::NewMessage> added;
  if (!d.bounces.empty() && !d.envelope.sender.empty()) {
    delivery::DsnInput in;
    in.reporting_mta = ctx_.config->hostname;
    in.original_id = id;
    in.sender = d.envelope.sender;
    in.arrival_ms = d.envelope.received_ms;
    in.now_ms = now_ms_;
    in.expired = d.expired;
    in.recipients = d.bounces;
    in.original = *d.data;
    store::NewMessage m;
    m.envelope.id = new_message_id();
    in.boundary = m.envelope.id;
    m.data = delivery::build_dsn(in);
    m.envelope.sender = "";
    m.envelope.recipients = {d.envelope.sender};
    m.envelope.received_ms = now_ms_;
    m.envelope.size = m.data.size();
    m.envelope.subject = "Undelivered Mail Returned to Sender";
    m.envelope.message_id = fmt::format("<{}@{}>", m.envelope.id, ctx_.config->hostname);
    m.envelope.smtputf8 = d.envelope.smtputf8;
    log::info("delivery.dsn", "id={} shard={} dsn={} to={} recipients={}", id, index_, m.envelope.id,
              log::q(d.envelope.sender), d.bounces.size());
    std::vector<std::string> bounced;
    for (const auto& b : d.bounces) bounced.push_back(b.recipient);
    track_delivery(d.envelope, "dsn_sent", 0,
                   fmt::format("delivery status notification {} to <{}>", m.envelope.id, d.envelope.sender),
                   std::move(bounced));
    added.push_back(std::move(m));
  }
  std::vector<store::DeliveryUpdate> updates;
  updates.push_back(std::move(d.update));
  deliveries_.erase(it);
  // Room for another message: a backlog (after a restart or a burst above
  // max_messages) moves on at the next tick instead of the next poll.
  if (deliveries_.size() + 1 == ctx_.config->delivery.max_messages && fresh_backlog_.empty()) next_queue_scan_ms_ = 0;
  writer_->submit_delivery(std::move(updates), std::move(added));
  refill();
}

void Shard::close_outbound(uint32_t slot) {
  Outbound& o = *outs_[slot];
  if (o.closing) return;
  o.closing = true;
  if (o.fd >= 0 && !o.send_inflight) ::shutdown(o.fd, SHUT_RDWR);
  if (o.recv_inflight || o.connect_inflight) {
    for (Op op : {kOutRecv, kOutConnect}) {
      io_uring_sqe* s = sqe();
      io_uring_prep_cancel64(s, make_ud(op, o.gen, slot), 0);
      io_uring_sqe_set_data64(s, make_ud(kCancel, 0, 0));
    }
  }
  maybe_release_outbound(slot);
}

// Frees the slot once no operation on it is in flight.
void Shard::maybe_release_outbound(uint32_t slot) {
  Outbound& o = *outs_[slot];
  if (!o.in_use) return;
  if (o.send_inflight) return;  // the QUIT (or an alert) is still going out
  if (o.fd >= 0 && (o.recv_inflight || o.connect_inflight)) {
    ::shutdown(o.fd, SHUT_RDWR);  // wakes the receive so it completes
    return;
  }
  if (o.recv_inflight || o.connect_inflight) return;
  if (o.fd >= 0) ::close(o.fd);
  o.fd = -1;
  // A job still attached never got a result (engine stopping): it stays
  // queued and is tried again after a restart.
  if (o.job) {
    std::unique_ptr<Job> job = std::move(o.job);
    fail_job(std::move(job), delivery::Outcome::kDeferred, "4.4.2", "delivery interrupted");
  }
  auto rit = routes_.find(o.route.key);
  if (rit != routes_.end()) std::erase(rit->second.idle, slot);
  o.session.reset();
  o.tls.reset();
  std::string().swap(o.out);
  std::string().swap(o.sending);
  o.in_use = false;
  o.closing = false;
  ++o.gen;
  free_outs_.push_back(slot);
  --outs_active_;
  if (rit != routes_.end()) {
    RouteState& rs = rit->second;
    --rs.connections;
    // A waiting job takes the freed place.
    if (!rs.waiting.empty() && !stopping_) {
      std::unique_ptr<Job> next = std::move(rs.waiting.front());
      rs.waiting.pop_front();
      ++rs.connections;
      open_outbound(std::move(next));
    } else if (rs.connections == 0 && rs.waiting.empty()) {
      routes_.erase(rit);
    }
  }
}

// Timeouts of outbound connections, the queue poll, and engine stop.
void Shard::outbound_tick() {
  std::vector<std::string> done;
  writer_->take_applied(done);
  for (const auto& id : done) busy_.erase(id);
  for (uint32_t slot = 0; slot < outs_.size(); ++slot) {
    Outbound& o = *outs_[slot];
    if (!o.in_use || o.closing) continue;
    if (!stopping_ && now_ms_ < o.deadline_ms) continue;
    if (o.phase == Outbound::Phase::kIdle) {
      std::erase(routes_[o.route.key].idle, slot);
      quit_outbound(slot);
      continue;
    }
    const char* why = stopping_ ? "engine stopping" : "timed out";
    if (o.phase == Outbound::Phase::kConnecting && !stopping_) {
      // Cancelling the connect completes it with -ECANCELED: next address.
      io_uring_sqe* s = sqe();
      io_uring_prep_cancel64(s, make_ud(kOutConnect, o.gen, slot), 0);
      io_uring_sqe_set_data64(s, make_ud(kCancel, 0, 0));
      o.deadline_ms = out_timeout(o, true);
      continue;
    }
    if (o.session) {
      o.session->connection_lost(fmt::format("{} waiting for {}", why, o.peer));
      pump_outbound(slot);  // records the results
      if (o.in_use && !o.closing) close_outbound(slot);
    } else if (o.phase == Outbound::Phase::kResolving && stopping_) {
      std::unique_ptr<Job> job = std::move(o.job);
      close_outbound(slot);
      fail_job(std::move(job), delivery::Outcome::kDeferred, "4.4.3", "engine stopping");
    } else if (o.phase == Outbound::Phase::kResolving) {
      o.last_error = fmt::format("resolving {} timed out", o.route.host);
      connect_next(slot);
    } else {
      close_outbound(slot);
    }
  }
  run_queue();
}

// A probe is bounded as a whole (a client waits on its RCPT); a delivery by
// each step.
int64_t Shard::out_timeout(const Outbound& o, bool connecting) const {
  const auto& cfg = ctx_.config->delivery;
  if (o.job && o.job->probe) return std::min(o.deadline_ms, now_ms_ + cfg.callout_timeout.count());
  return now_ms_ + (connecting ? cfg.connect_timeout : cfg.command_timeout).count();
}

// recipients=callout: a fresh cached answer decides at once; otherwise the
// backend is asked (MAIL FROM:<>, RCPT TO) and the session's RCPT waits.
smtp::RcptDecision Shard::start_callout(uint32_t slot, const std::string& address, const std::string& domain) {
  if (callout_) {
    auto cached = callout_->lookup(address, now_ms_);
    if (!cached) log::error("callout.cache_failed", "shard={} error={}", index_, log::q(cached.error()));
    else if (*cached) return **cached ? smtp::RcptDecision::kAccept : smtp::RcptDecision::kUnknownUser;
  }
  store::Envelope probe_env;
  probe_env.sender = "callout";  // never routed by MX: only the domain's backend is asked
  std::string why;
  auto route = route_for(domain, probe_env, why);
  if (!route) {
    log::warn("callout.failed", "shard={} rcpt={} reason={}", index_, log::q(address), log::q(why));
    return smtp::RcptDecision::kCalloutDown;
  }
  auto job = std::make_unique<Job>();
  job->probe = true;
  job->conn_token = token(slot);
  job->route = std::move(*route);
  job->route.key = "probe|" + job->route.key;
  job->recipients = {address};
  log::debug("callout.start", "shard={} rcpt={} backend={}", index_, log::q(address), job->route.host);
  dispatch(std::move(job));
  return smtp::RcptDecision::kPending;
}

void Shard::callout_done(const Job& job, const std::vector<delivery::RcptResult>& results) {
  smtp::RcptDecision d = smtp::RcptDecision::kCalloutDown;
  const std::string& address = job.recipients.front();
  const delivery::RcptResult* r = results.empty() ? nullptr : &results.front();
  const auto& cfg = ctx_.config->delivery;
  if (r && r->outcome == delivery::Outcome::kDelivered) {
    d = smtp::RcptDecision::kAccept;
    if (callout_) (void)callout_->store(address, true, now_ms_ + cfg.callout_positive_ttl.count());
  } else if (r && r->outcome == delivery::Outcome::kFailed && r->code >= 500 && r->code < 600) {
    // Only the backend's own 5xx says "unknown"; our failures and its 4xx
    // give 450, never a false 550.
    d = smtp::RcptDecision::kUnknownUser;
    if (callout_) (void)callout_->store(address, false, now_ms_ + cfg.callout_negative_ttl.count());
  }
  log::info("callout.result", "shard={} rcpt={} answer={} reply={}", index_, log::q(address),
            d == smtp::RcptDecision::kAccept ? "exists" : d == smtp::RcptDecision::kUnknownUser ? "unknown" : "unavailable",
            log::q(r ? (r->code ? fmt::format("{} {}", r->code, r->text) : r->text) : ""));
  uint32_t slot = static_cast<uint32_t>(job.conn_token);
  uint32_t gen = static_cast<uint32_t>(job.conn_token >> 32);
  Conn* c = lookup(slot, gen);
  if (!c || c->closing || !c->session) return;  // the client left; the answer stays cached
  c->session->rcpt_resolved(d);
  after_session(slot);
}

}  // namespace mxguard::engine
