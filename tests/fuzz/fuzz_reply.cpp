// libFuzzer target for the SMTP client: the input is what a backend says.
// The reply parser must agree with itself however the bytes are split, and a
// ClientSession driven like the engine drives it must keep its promises.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/delivery/client.hpp"

using namespace mxguard::delivery;

namespace {

constexpr std::string_view kPassword = "Pw-7f3a9c";

void require(bool ok) {
  if (!ok) std::abort();
}

bool one_line(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  return true;
}

uint32_t next_random(uint32_t& s) {
  s ^= s << 13;
  s ^= s >> 17;
  s ^= s << 5;
  return s;
}

// Whole and chunked parsing must give the same replies and the same verdict.
void check_parser(std::string_view data, uint32_t seed) {
  ReplyParser whole;
  std::vector<Reply> expected;
  const bool whole_ok = whole.feed(data, expected).ok();

  ReplyParser chunked;
  std::vector<Reply> got;
  bool chunked_ok = true;
  for (size_t pos = 0; pos < data.size();) {
    const size_t n = std::min<size_t>(data.size() - pos, 1 + next_random(seed) % 40);
    chunked_ok = chunked.feed(data.substr(pos, n), got).ok() && chunked_ok;
    pos += n;
  }
  require(whole_ok == chunked_ok);
  require(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const Reply& r = got[i];
    require(r.code == expected[i].code && r.enhanced == expected[i].enhanced && r.lines == expected[i].lines);
    require(r.code >= 200 && r.code <= 599);
    require(!r.lines.empty() && r.lines.size() <= 128);
    for (const std::string& l : r.lines) require(l.size() <= 4096);
    require(one_line(r.text()));
  }
}

ClientJob job_from(uint8_t flags, uint8_t shape, std::string_view message) {
  ClientJob job;
  job.helo = "mx.fuzz.test";
  job.sender = (shape & 0x10) ? "" : "s@fuzz.test";
  const size_t n = 1 + shape % 3;
  for (size_t i = 0; i < n; ++i) job.recipients.push_back("r" + std::to_string(i) + "@fuzz.test");
  job.tls = static_cast<TlsPolicy>(flags & 3);
  job.implicit_tls = flags & 4;
  if (flags & 8) {
    job.auth_user = "user";
    job.auth_password = std::string(kPassword);
  }
  job.probe = flags & 16;
  job.body_8bit = flags & 32;
  job.smtputf8 = flags & 64;
  job.message = message;
  job.size = message.size();
  return job;
}

void check_session(const ClientSession& s, const ClientJob& job, bool password_in_input) {
  require(s.results().size() == job.recipients.size());
  for (size_t i = 0; i < job.recipients.size(); ++i) {
    const RcptResult& r = s.results()[i];
    require(r.recipient == job.recipients[i]);
    require(one_line(r.text));
    if (!password_in_input) require(r.text.find(kPassword) == std::string::npos);
  }
  require(one_line(s.last_error()));
  if (!password_in_input) require(s.last_error().find(kPassword) == std::string::npos);
}

void run_session(std::string_view data, uint8_t flags, uint8_t shape, uint32_t seed) {
  static const std::string message = "Subject: fuzz\r\n\r\n.line\nbare\rcr\r\n..\r\n.";
  const bool password_in_input = data.find(kPassword) != std::string_view::npos;
  ClientJob job = job_from(flags, shape, message);
  ClientSession s(job);
  if (job.implicit_tls && (seed & 1)) s.tls_established(seed & 2);
  bool reused = false;
  for (size_t pos = 0; pos < data.size();) {
    const size_t n = std::min<size_t>(data.size() - pos, 1 + next_random(seed) % 64);
    s.receive(data.substr(pos, n));
    pos += n;
    // The engine: send everything, pump the body, run a requested handshake.
    for (int rounds = 0; rounds < 16; ++rounds) {
      s.output().clear();
      s.pump();
      if (s.output().empty()) break;
    }
    if (s.wants_tls()) {
      const uint32_t r = next_random(seed);
      if (r % 5 == 0) s.tls_failed("handshake failure");
      else s.tls_established(r & 8);
    }
    check_session(s, job, password_in_input);
    if (s.finished() && !s.wants_close()) require(s.reusable());
    if (s.finished() && s.reusable() && !reused && (next_random(seed) & 1)) {
      reused = true;
      job = job_from(flags ^ 0x40, shape + 1, message);
      s.next(job);
    }
    if (s.wants_close()) {
      require(s.finished());
      break;
    }
  }
  if (next_random(seed) & 1) s.quit();
  else s.connection_lost("end of input");
  require(s.finished());
  require(s.wants_close());
  check_session(s, job, password_in_input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t flags = data[0];
  const uint8_t shape = data[1];
  uint32_t seed = 0x9e3779b9u ^ (static_cast<uint32_t>(data[2]) << 8 | shape);
  const std::string_view rest(reinterpret_cast<const char*>(data) + 3, size - 3);
  check_parser(rest, seed);
  run_session(rest, flags, shape, seed);
  return 0;
}
