// AsyncResolver: libunbound's async API driven by the caller's event loop.
// Answers are collected during ub_process() and handed to callbacks only after
// it returns, so a callback may start new lookups or even cancel everything.
#include "mxguard/dns/async_resolver.hpp"

#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unbound.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "answer.hpp"
#include "context.hpp"
#include "exchange.hpp"
#include "mxguard/dns/names.hpp"

namespace mxguard::dns {

namespace {

// Owns one file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Rounds of callbacks cancel_all() and the destructor run: a callback may
// start a lookup (which then fails at once), but one that does so from every
// error callback would never let them finish.
constexpr int kMaxDrainRounds = 64;

Reply failed(std::string why) {
  Reply r;
  r.status = LookupStatus::kError;
  r.error = std::move(why);
  return r;
}

}  // namespace

struct AsyncResolver::Impl {
  // One libunbound query in flight. libunbound holds a pointer to it until it
  // calls back or the query is cancelled, and both end its life here; the
  // callback only records the query's id, which process() looks up again.
  struct Query {
    Impl* owner = nullptr;
    uint64_t id = 0;
    int async_id = 0;
    int64_t started_ms = 0;
    std::function<void(Reply)> finish;
  };
  struct Arrival {
    uint64_t id;
    int err;
    ub_result* result;
  };

  Resolver::Context ctx;
  Millis timeout;
  Fd poller;  // epoll over libunbound's pipe and `wake`: the one fd() the caller watches
  Fd wake;    // eventfd, signalled when a queued callback waits
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Query>> queries;
  std::vector<Arrival> arrivals;
  std::deque<std::function<void()>> queued;  // immediate failures and posts
  size_t owed = 0;                           // user callbacks not yet run
  bool refusing = false;                     // draining: new lookups fail without being asked

  Impl(Resolver::Context c, Millis t, Fd p, Fd w)
      : ctx(std::move(c)), timeout(t), poller(std::move(p)), wake(std::move(w)) {}

  ~Impl() {
    for (auto& a : arrivals) ub_resolve_free(a.result);
  }

  static void on_answer(void* arg, int err, ub_result* result) {
    auto* q = static_cast<Query*>(arg);
    q->owner->arrivals.push_back({q->id, err, result});
  }

  void queue(std::function<void()> fn) {
    queued.push_back(std::move(fn));
    uint64_t one = 1;
    // A full counter (never in practice) still leaves the fd readable.
    [[maybe_unused]] auto n = ::write(wake.get(), &one, sizeof one);
  }

  // Sends one question; a failure to even ask is delivered later, never from here.
  void start(std::string_view name, int rrtype, std::function<void(Reply)> finish) {
    if (refusing) {
      queue([f = std::move(finish)] { f(failed("the resolver is shutting down")); });
      return;
    }
    auto q = std::make_unique<Query>();
    q->owner = this;
    q->id = next_id++;
    q->started_ms = wall_ms();
    std::string qname(name);
    int e = ub_resolve_async(ctx.get(), qname.c_str(), rrtype, 1 /* IN */, q.get(), on_answer, &q->async_id);
    if (e != 0) {
      queue([f = std::move(finish), why = fmt::format("cannot ask for {}: {}", qname, ub_strerror(e))] {
        f(failed(why));
      });
      return;
    }
    q->finish = std::move(finish);
    queries.emplace(q->id, std::move(q));
  }

  // Takes a query out of the table before its callback runs, so whatever the
  // callback does to the table (start, cancel) cannot touch it again.
  std::unique_ptr<Query> take(uint64_t id) {
    auto it = queries.find(id);
    if (it == queries.end()) return nullptr;
    auto q = std::move(it->second);
    queries.erase(it);
    return q;
  }

  void drain_wake() {
    uint64_t count = 0;
    [[maybe_unused]] auto n = ::read(wake.get(), &count, sizeof count);
  }

  // Runs what was queued before this call; what those callbacks queue waits
  // for the next call (the eventfd says so), so a callback that keeps failing
  // at once cannot spin here.
  void run_queued() {
    drain_wake();
    if (queued.empty()) return;
    auto batch = std::move(queued);
    queued.clear();
    for (auto& fn : batch) fn();
  }

  void deliver_arrivals() {
    auto batch = std::move(arrivals);
    arrivals.clear();
    for (auto& a : batch) {
      UbResult result(a.result);
      // Missing when an earlier callback in this batch cancelled everything.
      if (auto q = take(a.id)) q->finish(classify(a.err, std::move(result)));
    }
  }

  std::vector<uint64_t> ids_where(auto pred) const {
    std::vector<uint64_t> ids;
    for (const auto& [id, q] : queries)
      if (pred(*q)) ids.push_back(id);
    std::sort(ids.begin(), ids.end());  // start order: deterministic callback order
    return ids;
  }

  void cancel(Query& q, Reply reply) {
    ub_cancel(ctx.get(), q.async_id);
    q.finish(std::move(reply));
  }

  // Fails every open query and queued callback, and whatever their callbacks
  // start, until nothing is left or the rounds run out.
  void drain(std::string_view why) {
    refusing = true;
    for (int round = 0; round < kMaxDrainRounds && (!queries.empty() || !queued.empty()); ++round) {
      for (uint64_t id : ids_where([](const Query&) { return true; }))
        if (auto q = take(id)) cancel(*q, failed(std::string(why)));
      run_queued();
    }
    refusing = false;
  }
};

Result<std::unique_ptr<AsyncResolver>> AsyncResolver::create(const ResolverOptions& options) {
  auto ctx = make_context(options);
  if (!ctx) return Error{ctx.error()};
  Fd poller(epoll_create1(EPOLL_CLOEXEC));
  Fd wake(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (poller.get() < 0 || wake.get() < 0) return Error{fmt::format("resolver event fds: {}", std::strerror(errno))};
  for (int fd : {ub_fd(ctx->get()), wake.get()}) {
    if (fd < 0) return Error{"libunbound has no event descriptor"};
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(poller.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
      return Error{fmt::format("resolver epoll: {}", std::strerror(errno))};
  }
  auto impl = std::make_unique<Impl>(std::move(*ctx), options.timeout, std::move(poller), std::move(wake));
  return std::unique_ptr<AsyncResolver>(new AsyncResolver(std::move(impl)));
}

AsyncResolver::AsyncResolver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AsyncResolver::~AsyncResolver() {
  impl_->drain("the resolver was destroyed");
  // Whatever is left belongs to a caller that restarted lookups round after
  // round; its callbacks are dropped rather than looping forever.
  impl_->refusing = true;
  for (auto& [id, q] : impl_->queries) ub_cancel(impl_->ctx.get(), q->async_id);
}

namespace {

// Wraps a user callback: parses the reply and keeps the owed count.
template <typename R, typename Parse>
std::function<void(Reply)> typed(size_t& owed, AsyncResolver::Callback<R> done, Parse parse, std::string_view type) {
  ++owed;
  return [&owed, done = std::move(done), parse, type](Reply reply) {
    --owed;
    done(to_answer<R>(std::move(reply), parse, type));
  };
}

}  // namespace

void AsyncResolver::txt(std::string_view name, Callback<TxtRecord> done) {
  impl_->start(name, kTypeTxt, typed<TxtRecord>(impl_->owed, std::move(done), parse_txt, "TXT"));
}

void AsyncResolver::mx(std::string_view name, Callback<MxRecord> done) {
  impl_->start(name, kTypeMx, typed<MxRecord>(impl_->owed, std::move(done), parse_mx, "MX"));
}

void AsyncResolver::tlsa(std::string_view name, Callback<TlsaRecord> done) {
  impl_->start(name, kTypeTlsa, typed<TlsaRecord>(impl_->owed, std::move(done), parse_tlsa, "TLSA"));
}

void AsyncResolver::a(std::string_view name, Callback<IpAddress> done) {
  impl_->start(name, kTypeA, typed<IpAddress>(impl_->owed, std::move(done), parse_a, "A"));
}

void AsyncResolver::aaaa(std::string_view name, Callback<IpAddress> done) {
  impl_->start(name, kTypeAaaa, typed<IpAddress>(impl_->owed, std::move(done), parse_aaaa, "AAAA"));
}

void AsyncResolver::addresses(std::string_view name, Callback<IpAddress> done) {
  // Both halves report here; the second to arrive merges and calls back.
  struct Join {
    std::optional<Answer<IpAddress>> v4, v6;
    Callback<IpAddress> done;
  };
  auto join = std::make_shared<Join>();
  join->done = std::move(done);
  ++impl_->owed;  // one user callback, however many queries feed it
  auto half = [join, &owed = impl_->owed](bool v6) {
    return [join, v6, &owed](Answer<IpAddress> a) {
      (v6 ? join->v6 : join->v4) = std::move(a);
      if (!join->v4 || !join->v6) return;
      --owed;
      join->done(merge(std::move(*join->v4), std::move(*join->v6)));
    };
  };
  impl_->start(name, kTypeA, [h = half(false)](Reply r) { h(to_answer<IpAddress>(std::move(r), parse_a, "A")); });
  impl_->start(name, kTypeAaaa,
               [h = half(true)](Reply r) { h(to_answer<IpAddress>(std::move(r), parse_aaaa, "AAAA")); });
}

void AsyncResolver::ptr(const IpAddress& ip, Callback<std::string> done) {
  impl_->start(reverse_name(ip), kTypePtr, typed<std::string>(impl_->owed, std::move(done), parse_ptr, "PTR"));
}

void AsyncResolver::post(std::function<void()> fn) {
  ++impl_->owed;
  impl_->queue([this, fn = std::move(fn)] {
    --impl_->owed;
    fn();
  });
}

int AsyncResolver::fd() const { return impl_->poller.get(); }

void AsyncResolver::process() {
  // A failing ub_process (its pipe broke) leaves the queries open: expire()
  // still times them out, so nobody waits forever.
  (void)ub_process(impl_->ctx.get());
  impl_->deliver_arrivals();
  impl_->run_queued();
}

void AsyncResolver::expire(int64_t now_ms) {
  int64_t limit = impl_->timeout.count();
  for (uint64_t id : impl_->ids_where([&](const Impl::Query& q) { return now_ms - q.started_ms >= limit; })) {
    if (auto q = impl_->take(id)) {
      Reply r;
      r.status = LookupStatus::kTimeout;
      r.error = fmt::format("no answer within {} ms", limit);
      impl_->cancel(*q, std::move(r));
    }
  }
  impl_->run_queued();
}

size_t AsyncResolver::pending() const { return impl_->owed; }

void AsyncResolver::cancel_all() { impl_->drain("the lookup was cancelled"); }

}  // namespace mxguard::dns
