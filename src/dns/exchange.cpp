// Drives libunbound's async API to completion or a deadline, and turns each
// ub_result into a LookupStatus.
#include "exchange.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <unbound.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace mxguard::dns {

namespace {

using Clock = std::chrono::steady_clock;

// Where a callback leaves its answer. Slots live in a vector sized before
// the first query and every query still open is cancelled before the vector
// dies, so libunbound never calls back into freed memory. (The engine will
// key callbacks by slot id instead, as its sessions do.)
struct Slot {
  int async_id = 0;
  bool done = false;
  int err = 0;
  ub_result* result = nullptr;
};

void on_answer(void* arg, int err, ub_result* result) {
  auto* slot = static_cast<Slot*>(arg);
  slot->done = true;
  slot->err = err;
  slot->result = result;
}

const char* rcode_name(int rcode) {
  switch (rcode) {
    case 1: return "FORMERR";
    case 4: return "NOTIMP";
    case 5: return "REFUSED";
    default: return "unexpected";
  }
}

void submit(ub_ctx* ctx, const Question& q, Slot& slot) {
  int e = ub_resolve_async(ctx, q.name.c_str(), q.rrtype, 1 /* IN */, &slot, on_answer, &slot.async_id);
  if (e != 0) {
    slot.done = true;
    slot.err = e;
  }
}

size_t open_count(const std::vector<Slot>& slots) {
  size_t n = 0;
  for (const auto& s : slots) n += s.done ? 0 : 1;
  return n;
}

// Milliseconds to wait in poll(), rounded up so we never spin just before the deadline.
int poll_ms(Clock::time_point deadline) {
  auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
}

// Feeds finished answers to the callbacks until all are done or time is up.
// Returns an error text when libunbound itself fails.
std::string pump(ub_ctx* ctx, std::vector<Slot>& slots, Clock::time_point deadline) {
  while (open_count(slots) > 0) {
    int wait = poll_ms(deadline);
    if (wait == 0) return {};
    pollfd p{ub_fd(ctx), POLLIN, 0};
    if (p.fd < 0) return "libunbound has no event descriptor";
    int n = poll(&p, 1, wait);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fmt::format("poll: {}", std::strerror(errno));
    if (n == 0) continue;
    if (int e = ub_process(ctx); e != 0) return fmt::format("libunbound: {}", ub_strerror(e));
  }
  return {};
}

Reply unfinished(ub_ctx* ctx, const Slot& slot, const std::string& failure) {
  ub_cancel(ctx, slot.async_id);
  Reply r;
  r.status = failure.empty() ? LookupStatus::kTimeout : LookupStatus::kError;
  r.error = failure;
  return r;
}

}  // namespace

void ResultDeleter::operator()(ub_result* r) const { ub_resolve_free(r); }

Reply classify(int err, UbResult result) {
  Reply r;
  if (err != 0 || !result) {
    r.error = err != 0 ? ub_strerror(err) : "libunbound returned no result";
    return r;
  }
  if (result->bogus) {
    r.error = fmt::format("DNSSEC validation failed: {}", result->why_bogus ? result->why_bogus : "bogus answer");
  } else if (result->rcode == 0) {
    r.status = result->havedata ? LookupStatus::kOk : LookupStatus::kNoData;
  } else if (result->rcode == 3) {
    r.status = LookupStatus::kNxDomain;
  } else if (result->rcode == 2) {
    r.status = LookupStatus::kServFail;
  } else {
    r.error = fmt::format("the DNS server answered {} (rcode {})", rcode_name(result->rcode), result->rcode);
  }
  r.result = std::move(result);
  return r;
}

std::vector<Reply> exchange(ub_ctx* ctx, const std::vector<Question>& questions, Millis timeout) {
  std::vector<Slot> slots(questions.size());
  auto deadline = Clock::now() + timeout;
  for (size_t i = 0; i < questions.size(); ++i) submit(ctx, questions[i], slots[i]);
  std::string failure = pump(ctx, slots, deadline);

  std::vector<Reply> replies;
  replies.reserve(slots.size());
  for (const auto& s : slots) {
    if (s.done) replies.push_back(classify(s.err, UbResult(s.result)));
    else replies.push_back(unfinished(ctx, s, failure));
  }
  return replies;
}

}  // namespace mxguard::dns
