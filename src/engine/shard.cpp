// The shard event loop on io_uring: accepts straight into the ring's
// fixed-file table, multishot receive with a provided buffer ring (an idle
// session holds no receive buffer), one send in flight per connection, a
// coarse tick for every timeout, and completions addressed by slot +
// generation so a late one for a closed session is dropped.
#include "shard.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <idn2.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fmt/format.h>

#include "mxguard/core/log.hpp"
#include "shard_internal.hpp"
#include "mxguard/core/net.hpp"

namespace mxguard::engine {

namespace {
// The callout cache env, opened once per process (LMDB forbids opening one
// env twice in a process) by whichever shard starts first.
store::CalloutCache* shared_callout_cache(const std::string& state_dir) {
  static std::once_flag once;
  static std::unique_ptr<store::CalloutCache> cache;
  std::call_once(once, [&] {
    auto c = store::CalloutCache::open(state_dir);
    if (c) cache = std::move(*c);
    else log::error("callout.cache_unavailable", "error={}", log::q(c.error()));
  });
  return cache.get();
}

constexpr unsigned kRingEntries = 4096;
constexpr unsigned kCqEntries = 65536;
constexpr unsigned kBufCount = 1024;  // power of two
constexpr unsigned kBufSize = 4096;
constexpr uint16_t kBufGroup = 0;
constexpr int64_t kTickMs = 200;
constexpr int64_t kForceCloseGraceMs = 3000;
// Fixed-file table slots kept for answering clients beyond its capacity.
constexpr size_t kTableReserve = 64;
constexpr int64_t kRefusalLogMs = 1000;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string peer_ip(const sockaddr_storage& sa, uint16_t& port) {
  char buf[INET6_ADDRSTRLEN] = "unknown";
  if (sa.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(sa);
    inet_ntop(AF_INET, &in.sin_addr, buf, sizeof buf);
    port = ntohs(in.sin_port);
  } else if (sa.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(sa);
    inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof buf);
    port = ntohs(in6.sin6_port);
  }
  return buf;
}

IpAddress ip_of(const sockaddr_storage& sa) {
  IpAddress ip;
  if (sa.ss_family == AF_INET6) {
    ip.v6 = true;
    std::memcpy(ip.bytes.data(), reinterpret_cast<const sockaddr_in6&>(sa).sin6_addr.s6_addr, 16);
  } else {
    std::memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in&>(sa).sin_addr, 4);
  }
  return ip;
}
}  // namespace


Shard::Shard(unsigned index, const EngineContext& ctx, std::vector<int> listen_fds)
    : index_(index), ctx_(ctx), listen_fds_(std::move(listen_fds)) {
  session_params_.hostname = ctx_.config->hostname;
  session_params_.limits = &ctx_.config->smtp;
  session_params_.tls_available = ctx_.tls != nullptr;
}

Shard::~Shard() {
  // Outstanding lookups answer with an error when the resolver goes; with no
  // verdicts left they find nothing to do.
  for (auto& c : conns_)
    if (c) c->verdict.reset();
  for (auto& o : outs_) {
    if (o && o->in_use && o->fd >= 0) ::close(o->fd);
    if (o) o->in_use = false;
  }
  resolver_.reset();
  writer_.reset();
  for (auto& c : conns_)
    if (c && c->in_use && !c->fixed && c->fd >= 0) ::close(c->fd);
  for (int fd : listen_fds_)
    if (fd >= 0) ::close(fd);
  if (ring_ready_) io_uring_queue_exit(&ring_);
  if (buf_ring_) munmap(buf_ring_, buf_ring_bytes_);
  if (buffers_) munmap(buffers_, buffers_bytes_);
  if (writer_fd_ >= 0) ::close(writer_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

Status Shard::init() {
  io_uring_params p{};
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  p.cq_entries = kCqEntries;
  int rc = io_uring_queue_init_params(kRingEntries, &ring_, &p);
  if (rc == -EINVAL) {  // older kernel: no single-issuer / deferred task run
    p = io_uring_params{};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = kCqEntries;
    rc = io_uring_queue_init_params(kRingEntries, &ring_, &p);
  }
  if (rc < 0)
    return Error{fmt::format(
        "cannot set up io_uring: {} (kernel without io_uring, kernel.io_uring_disabled set, "
        "a seccomp filter, or RLIMIT_MEMLOCK too low)",
        std::strerror(-rc))};
  ring_ready_ = true;
  if (!(p.features & IORING_FEAT_NODROP))
    return Error{"io_uring lacks IORING_FEAT_NODROP (kernel too old, need 5.19 or later)"};

  // Provided buffer ring: receive buffers belong to the shard, not to sessions.
  buf_ring_bytes_ = sizeof(io_uring_buf) * kBufCount;
  void* r = mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (r == MAP_FAILED) return Error{fmt::format("mmap buffer ring: {}", std::strerror(errno))};
  buf_ring_ = static_cast<io_uring_buf_ring*>(r);
  buffers_bytes_ = size_t{kBufCount} * kBufSize;
  void* b = mmap(nullptr, buffers_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (b == MAP_FAILED) return Error{fmt::format("mmap receive buffers: {}", std::strerror(errno))};
  buffers_ = static_cast<char*>(b);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(buf_ring_);
  reg.ring_entries = kBufCount;
  reg.bgid = kBufGroup;
  rc = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (rc < 0)
    return Error{fmt::format("cannot register io_uring provided buffers: {} (need Linux 5.19 or later)",
                             std::strerror(-rc))};
  io_uring_buf_ring_init(buf_ring_);
  int mask = io_uring_buf_ring_mask(kBufCount);
  for (unsigned i = 0; i < kBufCount; ++i)
    io_uring_buf_ring_add(buf_ring_, buffers_ + size_t{i} * kBufSize, kBufSize, static_cast<uint16_t>(i), mask,
                          static_cast<int>(i));
  io_uring_buf_ring_advance(buf_ring_, kBufCount);

  // Sessions live in the ring's fixed-file table rather than the process's
  // descriptor table: cheaper per operation, and the per-process
  // RLIMIT_NOFILE no longer caps the number of concurrent sessions.
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  fixed_files_ = static_cast<unsigned>(std::min<rlim_t>(nofile.rlim_cur, ctx_.config->smtp.max_connections + 64u));
  if (io_uring_register_files_sparse(&ring_, fixed_files_) < 0) fixed_files_ = 0;  // plain descriptors then

  writer_fd_ = eventfd(0, EFD_CLOEXEC);
  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  if (writer_fd_ < 0 || stop_fd_ < 0) return Error{fmt::format("eventfd: {}", std::strerror(errno))};

  auto spool = store::Spool::open(ctx_.config->state_dir, index_, /*deferred_meta_sync=*/true);
  if (!spool) return Error{fmt::format("spool of shard {}: {}", index_, spool.error())};
  writer_ = std::make_unique<StorageWriter>(std::move(*spool), writer_fd_, index_, ctx_.config->smtp.commit_delay,
                                            ctx_.greylist, ctx_.config->scan.greylist_window);
  writer_->set_purge(ctx_.config_store, ctx_.config->quarantine.purge_interval);
  writer_->set_tracking_days(ctx_.config->smtp.tracking_days);
  writer_->set_commit_histogram(&metrics_.commit());
  config_reader_ = std::make_unique<store::ConfigReader>(*ctx_.config_store);
  refresh_rules();
  const Config& cfg = *ctx_.config;
  auto client_tls = make_client_context();
  if (!client_tls) return Error{fmt::format("TLS client context of shard {}: {}", index_, client_tls.error())};
  client_tls_ = std::move(*client_tls);
  callout_ = shared_callout_cache(cfg.state_dir);
  // One resolver for the checks and for delivery (backend names, MX hosts).
  if (!cfg.dns.servers.empty()) {
    dns::ResolverOptions ro;
    ro.servers = cfg.dns.servers;
    ro.timeout = cfg.dns.timeout;
    ro.trust_anchor_file = cfg.delivery.dane_trust_anchor;
    auto made = dns::AsyncResolver::create(ro);
    if (!made) return Error{fmt::format("resolver of shard {}: {}", index_, made.error())};
    resolver_ = std::move(*made);
  }
  return {};
}

io_uring_sqe* Shard::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  while (!s) {
    io_uring_submit(&ring_);
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

Shard::Conn* Shard::lookup(uint32_t slot, uint32_t gen) {
  if (slot >= conns_.size()) return nullptr;
  Conn* c = conns_[slot].get();
  if (!c->in_use || (c->gen & 0xffffffu) != gen) return nullptr;
  return c;
}

uint64_t Shard::token(uint32_t slot) const {
  return (uint64_t{conns_[slot]->gen & 0xffffffu} << 32) | slot;
}

void Shard::update_clock() { now_ms_ = wall_ms(); }

void Shard::arm_accept(size_t pending) {
  PendingAccept& a = accepts_[pending];
  a.peer_len = sizeof a.peer;
  int fd = listen_fds_[pending / kAcceptsPerListener];
  auto* addr = reinterpret_cast<sockaddr*>(&a.peer);
  io_uring_sqe* s = sqe();
  if (fixed_files_ > 0) {
    // Into any free slot of the table. Set by hand: liburing 2.3's
    // io_uring_prep_accept_direct() adds 1 to the index, which turns
    // IORING_FILE_INDEX_ALLOC into 0, "not direct".
    io_uring_prep_accept(s, fd, addr, &a.peer_len, 0);
    s->file_index = IORING_FILE_INDEX_ALLOC;
  } else {
    io_uring_prep_accept(s, fd, addr, &a.peer_len, SOCK_CLOEXEC);
  }
  io_uring_sqe_set_data64(s, make_ud(kAccept, 0, static_cast<uint32_t>(pending)));
}

void Shard::arm_recv(uint32_t slot) {
  Conn& c = *conns_[slot];
  io_uring_sqe* s = sqe();
  io_uring_prep_recv_multishot(s, c.fd, nullptr, 0, 0);
  if (c.fixed) s->flags |= IOSQE_FIXED_FILE;
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = kBufGroup;
  io_uring_sqe_set_data64(s, make_ud(kRecv, c.gen, slot));
  c.recv_armed = true;
}

void Shard::arm_event_read(Op op, int fd, uint64_t* buf) {
  io_uring_sqe* s = sqe();
  io_uring_prep_read(s, fd, buf, sizeof *buf, 0);
  io_uring_sqe_set_data64(s, make_ud(op, 0, 0));
}

void Shard::arm_tick() {
  tick_ts_.tv_sec = 0;
  tick_ts_.tv_nsec = kTickMs * 1'000'000;
  io_uring_sqe* s = sqe();
  io_uring_prep_timeout(s, &tick_ts_, 0, 0);
  io_uring_sqe_set_data64(s, make_ud(kTick, 0, 0));
}

void Shard::recycle_buffer(uint16_t bid) {
  io_uring_buf_ring_add(buf_ring_, buffers_ + size_t{bid} * kBufSize, kBufSize, bid,
                        io_uring_buf_ring_mask(kBufCount), 0);
  io_uring_buf_ring_advance(buf_ring_, 1);
}

void Shard::request_stop() {
  uint64_t one = 1;
  if (::write(stop_fd_, &one, sizeof one) != sizeof one) {
    // The eventfd counter cannot overflow with one write per stop; nothing to do.
  }
}

void Shard::run() {
  update_clock();
  accepts_.assign(listen_fds_.size() * kAcceptsPerListener, {});
  for (size_t i = 0; i < accepts_.size(); ++i) arm_accept(i);
  arm_event_read(kWriterEvent, writer_fd_, &writer_buf_);
  arm_event_read(kStopEvent, stop_fd_, &stop_buf_);
  arm_tick();
  if (resolver_) arm_resolver();
  log::info("shard.start", "shard={} listeners={}", index_, listen_fds_.size());

  while (true) {
    if (stopping_ && active_ == 0 && outs_active_ == 0 && writer_->in_flight() == 0) break;
    int rc = io_uring_submit_and_wait(&ring_, 1);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      log::error("shard.ring_failed", "shard={} error={}", index_, log::q(std::strerror(-rc)));
      break;
    }
    update_clock();
    unsigned head, seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      uint64_t ud = cqe->user_data;
      Op op = static_cast<Op>(ud >> 56);
      uint32_t gen = static_cast<uint32_t>(ud >> 32) & 0xffffffu;
      uint32_t slot = static_cast<uint32_t>(ud);
      switch (op) {
        case kAccept: on_accept(slot, cqe->res); break;
        case kRecv: on_recv(slot, gen, cqe->res, cqe->flags); break;
        case kSend: on_send(slot, gen, cqe->res); break;
        case kWriterEvent: on_writer_event(); break;
        case kStopEvent: begin_shutdown(); break;
        case kTick: on_tick(); break;
        case kResolver: on_resolver(cqe->res, cqe->flags); break;
        case kOutConnect: on_out_connect(slot, gen, cqe->res); break;
        case kOutRecv: on_out_recv(slot, gen, cqe->res); break;
        case kOutSend: on_out_send(slot, gen, cqe->res); break;
        case kCancel: break;
      }
    }
    io_uring_cq_advance(&ring_, seen);
  }
  writer_->stop();
  // Completions that arrived after the loop ended belong to sessions already gone.
  log::info("shard.stop", "shard={}", index_);
}

// res: the connection's index in the fixed-file table (or its descriptor
// when the ring has no table).
void Shard::on_accept(size_t pending, int res) {
  const bool fixed = fixed_files_ > 0;
  if (res >= 0 && stopping_) {
    if (fixed) close_fixed(res);
    else ::close(res);
    return;
  }
  const sockaddr_storage sa = accepts_[pending].peer;
  if (!stopping_ && res != -ECANCELED) {
    // Re-arming at once while out of descriptors (or table slots) would
    // spin; the tick retries.
    bool out_of_fds = res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM;
    if (out_of_fds) accept_paused_.push_back(pending);
    else arm_accept(pending);
  }
  if (res < 0) {
    if (res != -ECANCELED)
      log::warn("smtp.accept_failed", "shard={} error={}", index_, log::q(std::strerror(-res)));
    return;
  }

  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(conns_.size());
    conns_.push_back(std::make_unique<Conn>());
  }
  Conn& c = *conns_[slot];
  c.in_use = true;
  c.fd = res;
  c.fixed = fixed;
  c.closing = c.recv_armed = c.send_inflight = c.close_after_flush = false;
  c.started_ms = c.last_activity_ms = now_ms_;
  c.session_id = next_session_id();
  ++active_;
  metrics_.connection_accepted();

  smtp::ClientInfo client;
  client.ip = peer_ip(sa, client.port);
  c.client_ip = ip_of(sa);
  c.client = client_key(sa, ctx_.config->smtp.ipv6_prefix);
  c.counted = true;
  c.line_started_ms = c.tls_started_ms = c.data_window_ms = 0;
  c.data_window_bytes = 0;
  unsigned total = ctx_.connections->fetch_add(1, std::memory_order_relaxed) + 1;
  ConnLimiter::Admit admit = ctx_.limiter->admit(c.client, now_ms_);
  // A reserve of table slots lets a client beyond the table's capacity hear
  // why it is turned away instead of finding its connection closed.
  bool table_full = fixed && active_ + std::min<size_t>(kTableReserve, fixed_files_ / 4) > fixed_files_;
  std::string refusal;
  if (total > ctx_.config->smtp.max_connections || table_full) {
    note_refusal(Refusal::kCapacity, c.client_ip);
    refusal = fmt::format("421 4.3.2 {} Error: too many connections, try again later\r\n", ctx_.config->hostname);
    track_connection_refused(c.client_ip, "capacity", refusal);
  } else if (admit != ConnLimiter::Admit::kOk && !client_allowlisted(c.client_ip)) {
    bool rate = admit == ConnLimiter::Admit::kConnectionRate;
    note_refusal(rate ? Refusal::kConnectionRate : Refusal::kPerClient, c.client_ip);
    refusal = fmt::format("421 4.7.0 {} Error: too many connections{} from your address, try again later\r\n",
                          ctx_.config->hostname, rate ? " per minute" : "");
    track_connection_refused(c.client_ip, rate ? "connection_rate" : "connection_limit", refusal);
  }
  if (!refusal.empty()) {
    c.out = std::move(refusal);
    c.close_after_flush = true;
    start_send(slot);
    return;
  }
  log::debug("smtp.connect", "shard={} client={} port={}", index_, client.ip, client.port);
  if (!c.host) c.host = std::make_unique<ConnHost>(*this, slot);
  c.session = std::make_unique<smtp::Session>(session_params_, *c.host, std::move(client));
  if (ctx_.config->smtp.greeting_delay.count() == 0) {
    c.session->start();
  } else {
    c.greet_at_ms = now_ms_ + ctx_.config->smtp.greeting_delay.count();
  }
  arm_recv(slot);
  after_session(slot);
}

void Shard::on_recv(uint32_t slot, uint32_t gen, int res, uint32_t flags) {
  bool has_buf = flags & IORING_CQE_F_BUFFER;
  uint16_t bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
  Conn* c = lookup(slot, gen);
  if (!c) {
    if (has_buf) recycle_buffer(bid);
    return;
  }
  bool more = flags & IORING_CQE_F_MORE;
  if (!more) c->recv_armed = false;
  if (res > 0 && has_buf) {
    if (!c->closing) deliver_input(slot, std::string_view(buffers_ + size_t{bid} * kBufSize, static_cast<size_t>(res)));
    recycle_buffer(bid);
    c = lookup(slot, gen);
    if (c && !more && !c->closing) arm_recv(slot);
    if (c && c->closing) maybe_finalize(slot);
    return;
  }
  if (has_buf) recycle_buffer(bid);
  if (res == -ENOBUFS && !c->closing) {
    if (!more) arm_recv(slot);  // every buffer is busy; they come back within this loop turn
    return;
  }
  if (c->closing) {
    maybe_finalize(slot);
  } else if (res == 0 && c->session) {
    // The client half-closed (e.g. "...\r\n.\r\nQUIT" then shutdown): answer
    // what it sent, including the 250 after a pending commit, then close.
    c->close_after_flush = true;
    after_session(slot);
  } else {
    c->out.clear();  // reset or error: nobody is listening
    begin_close(slot);
  }
}

void Shard::deliver_input(uint32_t slot, std::string_view data) {
  Conn& c = *conns_[slot];
  c.last_activity_ms = now_ms_;
  if (!c.session) return;
  // Content bytes towards smtp.min_data_rate (TLS records count as their size on the wire).
  if (c.session->in_data()) c.data_window_bytes += data.size();
  if (c.tls) {
    plain_scratch_.clear();
    auto st = c.tls->receive(data, plain_scratch_);
    if (st == TlsChannel::Status::kError) {
      log::info("smtp.tls_failed", "shard={} error={}", index_, log::q(c.tls->last_error()));
      c.tls->drain(c.out);  // the alert, if any
      c.session->output().clear();
      c.close_after_flush = true;
      after_session(slot);
      return;
    }
    if (st == TlsChannel::Status::kHandshakeDone) c.session->tls_started(c.tls->info());
    if (!plain_scratch_.empty()) c.session->receive(plain_scratch_);
    if (st == TlsChannel::Status::kClosed) c.close_after_flush = true;
  } else {
    c.session->receive(data);
  }
  after_session(slot);
}

// Moves what the session produced towards the wire and the spool.
void Shard::after_session(uint32_t slot) {
  Conn& c = *conns_[slot];
  if (c.session) {
    feed_scan(c);
    if (auto msg = c.session->take_message()) {
      // A verdict decided at once runs after_session itself, which may close the connection.
      begin_verdict(slot, std::move(msg));
      if (!c.in_use || !c.session) return;
    }
    if (stopping_ && !c.session->in_transaction() && !c.session->awaiting_commit() && !c.session->wants_close())
      c.session->shutting_down();
    std::string& o = c.session->output();
    if (!o.empty()) {
      if (!c.tls) c.out.append(o);
      else if (c.tls->established() && !c.tls->send(o)) c.close_after_flush = true;
      o.clear();
    }
    if (c.tls) c.tls->drain(c.out);
    // The 220 for STARTTLS is now queued in plaintext; what follows is TLS.
    if (c.session->wants_starttls() && !c.tls) {
      c.tls = std::make_unique<TlsChannel>(ctx_.tls);
      c.tls_started_ms = now_ms_;
    }
    update_deadlines(c);
  }
  if (!c.send_inflight) {
    bool committing = c.session && c.session->awaiting_commit();
    if (!c.out.empty()) start_send(slot);
    else if (!committing && (c.close_after_flush || (c.session && c.session->wants_close()))) begin_close(slot);
  }
}

void Shard::start_send(uint32_t slot) {
  Conn& c = *conns_[slot];
  c.sending.swap(c.out);
  c.out.clear();
  c.send_off = 0;
  io_uring_sqe* s = sqe();
  io_uring_prep_send(s, c.fd, c.sending.data(), c.sending.size(), MSG_NOSIGNAL);
  if (c.fixed) s->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(s, make_ud(kSend, c.gen, slot));
  c.send_inflight = true;
}

void Shard::on_send(uint32_t slot, uint32_t gen, int res) {
  Conn* c = lookup(slot, gen);
  if (!c) return;
  c->send_inflight = false;
  if (res < 0) {
    c->out.clear();
    if (!c->closing) begin_close(slot);
    else maybe_finalize(slot);
    return;
  }
  c->send_off += static_cast<size_t>(res);
  if (c->send_off < c->sending.size() && !c->closing) {
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, c->fd, c->sending.data() + c->send_off, c->sending.size() - c->send_off, MSG_NOSIGNAL);
    if (c->fixed) s->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(s, make_ud(kSend, c->gen, slot));
    c->send_inflight = true;
    return;
  }
  c->sending.clear();
  if (c->sending.capacity() > 16384) c->sending.shrink_to_fit();
  if (c->closing) {
    maybe_finalize(slot);
    return;
  }
  after_session(slot);
}

// Drops a connection's fixed-file entry (the socket closes with it, FIN
// after queued data), submitted with the next batch instead of a syscall.
void Shard::close_fixed(int index) {
  io_uring_sqe* s = sqe();
  io_uring_prep_close_direct(s, static_cast<unsigned>(index));
  io_uring_sqe_set_data64(s, make_ud(kCancel, 0, 0));
}

void Shard::begin_close(uint32_t slot) {
  Conn& c = *conns_[slot];
  if (!c.closing) {
    c.closing = true;
    // No IORING_OP_SHUTDOWN for fixed files: it runs in io-wq and resolves
    // the slot late, possibly after the slot holds the next connection.
    // Cancelling by user_data is slot-safe; dropping the table entry in
    // maybe_finalize() then releases the socket (FIN after queued data).
    if (!c.fixed) ::shutdown(c.fd, SHUT_RDWR);
    for (Op op : {kRecv, kSend}) {
      if ((op == kRecv && !c.recv_armed) || (op == kSend && !c.send_inflight)) continue;
      io_uring_sqe* s = sqe();
      io_uring_prep_cancel64(s, make_ud(op, c.gen, slot), 0);
      io_uring_sqe_set_data64(s, make_ud(kCancel, 0, 0));
    }
  }
  maybe_finalize(slot);
}

void Shard::maybe_finalize(uint32_t slot) {
  Conn& c = *conns_[slot];
  if (!c.in_use || c.recv_armed || c.send_inflight) return;
  if (c.fixed) {
    close_fixed(c.fd);
  } else {
    ::close(c.fd);
  }
  if (c.counted) ctx_.limiter->release(c.client);
  c.counted = false;
  ctx_.connections->fetch_sub(1, std::memory_order_relaxed);
  if (c.session)
    log::debug("smtp.disconnect", "shard={} messages={} duration_ms={}", index_, c.session->messages_accepted(),
               now_ms_ - c.started_ms);
  c.session.reset();
  c.tls.reset();
  c.scan.reset();
  c.scan_id.clear();
  c.scanned = 0;
  c.verdict.reset();
  std::string().swap(c.out);
  std::string().swap(c.sending);
  c.fd = -1;
  c.in_use = false;
  c.closing = false;
  ++c.gen;
  free_slots_.push_back(slot);
  --active_;
}

void Shard::on_writer_event() {
  arm_event_read(kWriterEvent, writer_fd_, &writer_buf_);
  completions_.clear();
  writer_->take_completions(completions_);
  writer_->take_applied(applied_);
  for (const auto& id : applied_) busy_.erase(id);
  for (const auto& done : completions_) {
    uint32_t slot = static_cast<uint32_t>(done.token);
    uint32_t gen = static_cast<uint32_t>(done.token >> 32);
    if (done.ok)
      log::info("smtp.queued", "id={} shard={} size={} batch={} commit_ms={:.2f}", done.id, index_, done.size,
                done.batch, done.commit_ms);
    else
      log::error("smtp.queue_failed", "id={} shard={}", done.id, index_);
    // A message just stored goes straight to delivery (its due key says
    // "now"): no wait for the next queue poll.
    if (done.ok) start_fresh(done.id);
    Conn* c = lookup(slot, gen);
    if (!c || c->closing || !c->session) continue;  // client left before the reply; the message stays queued
    c->session->commit_done(done.ok);
    after_session(slot);
  }
}

void Shard::on_tick() {
  heartbeat_.fetch_add(1, std::memory_order_relaxed);
  metrics_.tick(steady_ns(), kTickMs * 1'000'000);
  if (!(stopping_ && active_ == 0 && outs_active_ == 0)) arm_tick();
  if (resolver_) resolver_->expire(now_ms_);
  outbound_tick();
  if (!stopping_)
    for (size_t pending : accept_paused_) arm_accept(pending);
  accept_paused_.clear();
  const SmtpConfig& lim = ctx_.config->smtp;
  bool force = stopping_ && now_ms_ >= stop_deadline_ms_;
  bool kill = stopping_ && now_ms_ >= stop_deadline_ms_ + kForceCloseGraceMs;
  for (uint32_t slot = 0; slot < conns_.size(); ++slot) {
    Conn& c = *conns_[slot];
    if (!c.in_use || c.closing) continue;
    if (kill) {
      c.out.clear();
      begin_close(slot);
      continue;
    }
    if (!c.session) continue;
    smtp::Session& s = *c.session;
    if (!s.greeted()) {
      if (now_ms_ >= c.greet_at_ms) {
        s.start();
        after_session(slot);
      }
      continue;
    }
    if (c.verdict) {
      // The resolver times out each lookup; this only guards against a
      // check that never called back.
      if (now_ms_ - c.verdict->started_ms > 2 * ctx_.config->dns.timeout.count() + 2000) {
        log::error("scan.checks_stuck", "shard={} id={}", index_, c.verdict->msg->envelope.id);
        c.verdict->outstanding = 0;
        finish_verdict(slot);
      }
      continue;
    }
    if (s.awaiting_commit() || s.rcpt_pending()) {  // our wait, not the client's
      c.last_activity_ms = now_ms_;
      continue;
    }
    if (force) s.shutting_down();
    else if (now_ms_ - c.started_ms > lim.session_timeout.count()) s.session_time_exceeded();
    else if (idle_expired(c, lim)) s.timeout();
    else if (data_too_slow(c, lim)) s.data_rate_too_low();
    else continue;
    after_session(slot);
  }
  flush_refusals(false);
}

// An unfinished command line (or a TLS handshake) must be done within
// command_timeout of its first byte; otherwise the wait runs from the last byte.
bool Shard::idle_expired(const Conn& c, const SmtpConfig& lim) const {
  const smtp::Session& s = *c.session;
  if (s.in_data()) return now_ms_ - c.last_activity_ms > lim.data_timeout.count();
  int64_t since = c.last_activity_ms;
  if (c.tls && !c.tls->established()) since = c.tls_started_ms;
  else if (c.line_started_ms) since = c.line_started_ms;
  return now_ms_ - since > lim.command_timeout.count();
}

// Checked at the end of each data_rate_window: fewer bytes than
// min_data_rate * window means a trickle; otherwise the next window starts.
bool Shard::data_too_slow(Conn& c, const SmtpConfig& lim) {
  if (lim.min_data_rate == 0 || c.data_window_ms == 0) return false;
  int64_t window = lim.data_rate_window.count();
  if (now_ms_ - c.data_window_ms < window) return false;
  uint64_t want = uint64_t{lim.min_data_rate} * static_cast<uint64_t>(window) / 1000;
  if (c.data_window_bytes < want) {
    log::info("smtp.data_too_slow", "shard={} client={} bytes={} window_ms={}", index_, c.client_ip.to_string(),
              c.data_window_bytes, window);
    return true;
  }
  c.data_window_ms = now_ms_;
  c.data_window_bytes = 0;
  return false;
}

// Keeps the per-connection clocks in step with the session after it moved.
void Shard::update_deadlines(Conn& c) {
  const smtp::Session& s = *c.session;
  if (!s.partial_command()) c.line_started_ms = 0;
  else if (c.line_started_ms == 0) c.line_started_ms = now_ms_;
  if (!s.in_data()) {
    c.data_window_ms = 0;
    c.data_window_bytes = 0;
  } else if (c.data_window_ms == 0) {
    c.data_window_ms = now_ms_;
  }
}

void Shard::note_refusal(Refusal why, const IpAddress& client) {
  RefusalLog& r = refusals_[static_cast<size_t>(why)];
  // A session's refusal (the message rate) is counted when the session reports it.
  if (why != Refusal::kMessageRate)
    metrics_.refused(why == Refusal::kPerClient ? RefusalReason::kConnectionLimit
                     : why == Refusal::kConnectionRate ? RefusalReason::kConnectionRate : RefusalReason::kCapacity);
  ++r.count;
  r.last_client = client.to_string();
  flush_refusals(false);
}

// One line per reason and second at most, however many clients are turned away.
void Shard::flush_refusals(bool force) {
  if (!force && now_ms_ - refusals_logged_ms_ < kRefusalLogMs) return;
  static constexpr const char* kReason[] = {"per_ip_limit", "connection_rate", "message_rate", "capacity"};
  bool any = false;
  for (size_t i = 0; i < static_cast<size_t>(Refusal::kCount); ++i) {
    RefusalLog& r = refusals_[i];
    if (r.count == 0) continue;
    log::warn("smtp.connection_refused", "shard={} reason={} count={} last_client={}", index_, kReason[i], r.count,
              r.last_client);
    r.count = 0;
    any = true;
  }
  if (any) refusals_logged_ms_ = now_ms_;
}

bool Shard::client_allowlisted(const IpAddress& client) {
  store::PolicyQuery q{};
  q.client = client;
  auto v = config_reader_->global_policy(q);
  return v && *v == store::ListVerdict::kAllow;
}

bool Shard::allow_message(uint32_t slot) {
  Conn& c = *conns_[slot];
  if (ctx_.limiter->take_message(c.client, now_ms_) || client_allowlisted(c.client_ip)) return true;
  note_refusal(Refusal::kMessageRate, c.client_ip);
  return false;
}

void Shard::begin_shutdown() {
  if (stopping_) return;
  stopping_ = true;
  stop_deadline_ms_ = now_ms_ + ctx_.config->smtp.shutdown_timeout.count();
  for (size_t i = 0; i < accepts_.size(); ++i) {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, make_ud(kAccept, 0, static_cast<uint32_t>(i)), 0);
    io_uring_sqe_set_data64(s, make_ud(kCancel, 0, 0));
  }
  io_uring_submit(&ring_);
  for (int& fd : listen_fds_) {
    ::close(fd);
    fd = -1;
  }
  log::info("shard.stopping", "shard={} sessions={} pending_commits={}", index_, active_, writer_->in_flight());
  for (uint32_t slot = 0; slot < conns_.size(); ++slot)
    if (conns_[slot]->in_use && !conns_[slot]->closing) after_session(slot);
}

// Policy lookups read the config env in one short read transaction each, so
// a console change is in force for the next command, without a reload. A
// store failure never blocks mail: the client is told to retry (RCPT) or
// the lists are skipped (connect, MAIL), and the error is logged.
bool Shard::client_blocked(std::string_view client_ip) {
  store::PolicyQuery q{};
  q.client = IpAddress::parse(client_ip);
  auto v = config_reader_->global_policy(q);
  if (!v) {
    log::error("config.lookup_failed", "shard={} what=client error={}", index_, log::q(v.error()));
    return false;
  }
  return *v == store::ListVerdict::kBlock;
}

smtp::SenderDecision Shard::check_sender(const smtp::Mailbox& sender, std::string_view client_ip) {
  std::string addr = sender.str();
  store::PolicyQuery q{};
  q.sender = addr;
  q.sender_domain = sender.domain;
  q.client = IpAddress::parse(client_ip);
  auto v = config_reader_->global_policy(q);
  if (!v) {
    log::error("config.lookup_failed", "shard={} what=sender error={}", index_, log::q(v.error()));
    return smtp::SenderDecision::kAccept;
  }
  if (*v == store::ListVerdict::kBlock) return smtp::SenderDecision::kBlocked;
  return *v == store::ListVerdict::kAllow ? smtp::SenderDecision::kAllowlisted : smtp::SenderDecision::kAccept;
}

// Domains are stored as A-labels; an SMTPUTF8 recipient may name a U-label.
static std::optional<std::string> lookup_form(const std::string& domain) {
  bool ascii = true;
  for (unsigned char c : domain) ascii = ascii && c < 0x80;
  if (ascii) return domain;
  char* out = nullptr;
  if (idn2_to_ascii_8z(domain.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT) != IDN2_OK) return std::nullopt;
  std::string a(out);
  idn2_free(out);
  return a;
}

smtp::RcptDecision Shard::check_recipient(const smtp::Mailbox& rcpt, const smtp::Mailbox& sender,
                                          std::string_view client_ip) {
  return check_recipient_at(UINT32_MAX, rcpt, sender, client_ip);
}

smtp::RcptDecision Shard::check_recipient_at(uint32_t slot, const smtp::Mailbox& rcpt, const smtp::Mailbox& sender,
                                             std::string_view client_ip) {
  std::string addr = sender.str();
  auto domain = lookup_form(rcpt.domain);
  if (!domain) return smtp::RcptDecision::kRelayDenied;  // not a valid IDN: not one of ours
  store::PolicyQuery q{*domain, rcpt.local, addr, sender.domain, IpAddress::parse(client_ip)};
  auto p = config_reader_->rcpt_policy(q);
  if (!p) {
    log::error("config.lookup_failed", "shard={} domain={} error={}", index_, log::q(rcpt.domain), log::q(p.error()));
    return smtp::RcptDecision::kTempFail;
  }
  if (!p->domain_found) return smtp::RcptDecision::kRelayDenied;
  switch (static_cast<store::DomainStatus>(p->status)) {
    case store::DomainStatus::kActive: break;
    case store::DomainStatus::kSuspended: return smtp::RcptDecision::kSuspended;
    case store::DomainStatus::kPendingVerification: return smtp::RcptDecision::kRelayDenied;
  }
  // RFC 5321 4.5.1: postmaster@ every domain we accept mail for must be
  // accepted, so it is neither looked up nor asked of the backend. The block
  // lists still apply: blocking a sender is the operator's decision about
  // that sender, and the RFC allows blocking postmaster mail in such cases.
  bool postmaster = smtp::is_postmaster(rcpt.local);
  if (p->list_mode && !p->recipient_known && !postmaster) return smtp::RcptDecision::kUnknownUser;
  if (p->lists == store::ListVerdict::kBlock) return smtp::RcptDecision::kBlocked;
  smtp::RcptDecision accept = p->lists == store::ListVerdict::kAllow ? smtp::RcptDecision::kAcceptAllowlisted
                                                                     : smtp::RcptDecision::kAccept;
  if (p->callout_mode && !postmaster && slot != UINT32_MAX) {
    // A subaddress is verified by its base address (bob+news@ by bob@): a
    // backend need not know about subaddressing to answer for it.
    const std::string& local = p->base_local.empty() ? rcpt.local : p->base_local;
    smtp::RcptDecision c = start_callout(slot, fmt::format("{}@{}", local, *domain), *domain);
    return c == smtp::RcptDecision::kAccept ? accept : c;
  }
  return accept;
}

// smtp.postmaster when set, else postmaster@ the oldest active domain.
std::variant<smtp::Mailbox, smtp::RcptDecision> Shard::postmaster() {
  const std::string& configured = ctx_.config->smtp.postmaster;
  if (!configured.empty()) {
    size_t at = configured.rfind('@');
    return smtp::Mailbox{configured.substr(0, at), configured.substr(at + 1)};
  }
  auto oldest = config_reader_->oldest_active_domain();
  if (!oldest) {
    log::error("config.lookup_failed", "shard={} what=postmaster error={}", index_, log::q(oldest.error()));
    return smtp::RcptDecision::kTempFail;
  }
  if (!*oldest) {
    log::warn("smtp.no_postmaster", "shard={} reason={}", index_, log::q("no active domain and no smtp.postmaster"));
    return smtp::RcptDecision::kUnknownUser;
  }
  return smtp::Mailbox{"postmaster", **oldest};
}

std::string Shard::new_message_id() {
  int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  if (us <= last_id_us_) us = last_id_us_ + 1;
  last_id_us_ = us;
  return fmt::format("{:013x}.s{}", us, index_);
}

}  // namespace mxguard::engine
