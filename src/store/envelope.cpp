// Envelope records: a version byte, then length-prefixed fields in a fixed order.
#include "mxguard/store/envelope.hpp"

#include <cstring>

namespace mxguard::store {

namespace {

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_str(std::string& out, std::string_view s) {
  put_u64(out, s.size());
  out.append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool u64(uint64_t& v) {
    if (b_.size() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(b_[i])) << (8 * i);
    b_.remove_prefix(8);
    return true;
  }
  bool str(std::string& s) {
    uint64_t n;
    if (!u64(n) || n > b_.size()) return false;
    s.assign(b_.substr(0, n));
    b_.remove_prefix(n);
    return true;
  }
  bool done() const { return b_.empty(); }

 private:
  std::string_view b_;
};

}  // namespace

std::string encode_envelope(const Envelope& e) {
  std::string out;
  out.reserve(128 + e.sender.size() + e.subject.size() + e.recipients.size() * 40);
  out.push_back(static_cast<char>(kEnvelopeVersion));
  put_str(out, e.id);
  put_str(out, e.sender);
  put_u64(out, e.recipients.size());
  for (const auto& r : e.recipients) put_str(out, r);
  put_str(out, e.client_ip);
  put_u64(out, e.client_port);
  put_str(out, e.helo);
  put_str(out, e.tls);
  put_u64(out, static_cast<uint64_t>(e.received_ms));
  put_u64(out, e.size);
  put_str(out, e.subject);
  put_str(out, e.message_id);
  put_u64(out, (e.smtputf8 ? 1u : 0u) | (e.body_8bit ? 2u : 0u));
  put_u64(out, e.allowlisted.size());
  for (const auto& a : e.allowlisted) put_str(out, a);
  put_u64(out, e.scanned ? 1 : 0);
  uint64_t score_bits;
  std::memcpy(&score_bits, &e.score, sizeof score_bits);
  put_u64(out, score_bits);
  put_str(out, e.action);
  put_u64(out, e.reasons.size());
  for (const auto& r : e.reasons) put_str(out, r);
  put_u64(out, e.quarantined.size());
  for (const auto& q : e.quarantined) put_str(out, q);
  return out;
}

Result<Envelope> decode_envelope(std::string_view bytes) {
  if (bytes.empty()) return Error{"empty envelope record"};
  uint8_t version = static_cast<uint8_t>(bytes[0]);
  if (version < 1 || version > kEnvelopeVersion)
    return Error{"unsupported envelope record version " + std::to_string(version)};
  Reader r(bytes.substr(1));
  Envelope e;
  uint64_t nrcpt, port, ms, flags;
  bool ok = r.str(e.id) && r.str(e.sender) && r.u64(nrcpt) && nrcpt <= 1'000'000;
  for (uint64_t i = 0; ok && i < nrcpt; ++i) {
    std::string rc;
    ok = r.str(rc);
    e.recipients.push_back(std::move(rc));
  }
  ok = ok && r.str(e.client_ip) && r.u64(port) && r.str(e.helo) && r.str(e.tls) && r.u64(ms) &&
       r.u64(e.size) && r.str(e.subject) && r.str(e.message_id) && r.u64(flags);
  if (ok && version >= 2) {
    uint64_t nallow;
    ok = r.u64(nallow) && nallow <= 1'000'000;
    for (uint64_t i = 0; ok && i < nallow; ++i) {
      std::string a;
      ok = r.str(a);
      e.allowlisted.push_back(std::move(a));
    }
  }
  if (ok && version >= 3) {
    uint64_t scanned = 0, score_bits = 0, n = 0;
    ok = r.u64(scanned) && r.u64(score_bits) && r.str(e.action) && r.u64(n) && n <= 100'000;
    e.scanned = scanned != 0;
    std::memcpy(&e.score, &score_bits, sizeof score_bits);
    for (uint64_t i = 0; ok && i < n; ++i) {
      std::string x;
      ok = r.str(x);
      e.reasons.push_back(std::move(x));
    }
    ok = ok && r.u64(n) && n <= 1'000'000;
    for (uint64_t i = 0; ok && i < n; ++i) {
      std::string x;
      ok = r.str(x);
      e.quarantined.push_back(std::move(x));
    }
  }
  ok = ok && r.done();
  if (!ok) return Error{"truncated or corrupt envelope record"};
  e.client_port = static_cast<uint16_t>(port);
  e.received_ms = static_cast<int64_t>(ms);
  e.smtputf8 = flags & 1;
  e.body_8bit = flags & 2;
  return e;
}

int shard_of_message_id(std::string_view id) {
  auto dot = id.rfind(".s");
  if (dot == std::string_view::npos || dot + 2 >= id.size()) return -1;
  int v = 0;
  for (char c : id.substr(dot + 2)) {
    if (c < '0' || c > '9' || v > 100000) return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace mxguard::store
