// libFuzzer target: arbitrary bytes into the SMTP session state machine, cut
// into receive-sized pieces chosen by the input, with commits that succeed or
// fail. Any crash, leak, UB or unbounded buffering is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mxguard/smtp/session.hpp"

using namespace mxguard;
using namespace mxguard::smtp;

namespace {
class FuzzHost : public SessionHost {
 public:
  bool client_blocked(std::string_view) override { return false; }
  SenderDecision check_sender(const Mailbox& s, std::string_view) override {
    return s.domain == "b.example" ? SenderDecision::kBlocked : SenderDecision::kAccept;
  }
  RcptDecision check_recipient(const Mailbox& r, const Mailbox& sender, std::string_view) override {
    if (r.domain == "example.com" && sender.domain == "a.example") return RcptDecision::kAcceptAllowlisted;
    if (r.domain == "example.com") return RcptDecision::kAccept;
    if (r.domain == "s.example") return RcptDecision::kSuspended;
    return RcptDecision::kRelayDenied;
  }
  std::variant<Mailbox, RcptDecision> postmaster() override { return Mailbox{"postmaster", "example.com"}; }
  std::string new_message_id() override { return "0.s0"; }
  int64_t now_ms() override { return 0; }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static SmtpConfig limits = [] {
    SmtpConfig l;
    l.max_message_size = 64 * 1024;  // small, so the size limit is reached often
    return l;
  }();
  static SessionParams params{"mx.fuzz", &limits, true};
  FuzzHost host;
  Session s(params, host, ClientInfo{"192.0.2.1", 1});
  s.start();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // The first byte seeds the piece sizes, so splits vary with the input.
  uint32_t seed = size ? data[0] : 1;
  bool commit_ok = true;
  while (!in.empty() && !s.wants_close()) {
    seed = seed * 1103515245u + 12345u;
    size_t piece = 1 + (seed >> 16) % 97;
    if (piece > in.size()) piece = in.size();
    s.receive(in.substr(0, piece));
    in.remove_prefix(piece);
    if (auto m = s.take_message()) {
      if (m->data.size() > limits.max_message_size + 4096) abort();  // limit must hold
    }
    if (s.awaiting_commit()) {
      s.commit_done(commit_ok);
      commit_ok = !commit_ok;
    }
    if (s.wants_starttls()) s.tls_started(TlsInfo{"TLSv1.3", "X", 256});
    if (s.buffered_input() > 512 * 1024) abort();  // pipelined input must stay bounded
    s.output().clear();
  }
  return 0;
}
