// The envelope of a spooled message and its versioned binary encoding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/result.hpp"

namespace mxguard::store {

struct Envelope {
  std::string id;                       // names its shard, e.g. "0190f3c2a1b2c3.s1"
  std::string sender;                   // "" for the null reverse-path
  std::vector<std::string> recipients;  // accepted forward-paths
  std::string client_ip;
  uint16_t client_port = 0;
  std::string helo;
  std::string tls;  // "" for plaintext, else "TLSv1.3 TLS_AES_256_GCM_SHA384"
  int64_t received_ms = 0;
  uint64_t size = 0;  // octets stored (our Received header included)
  std::string subject;
  std::string message_id;
  bool smtputf8 = false;
  bool body_8bit = false;
  // Recipients whose policy allow-listed this message ("*": the global lists
  // did), so the scanner can let it through. Added in version 2.
  std::vector<std::string> allowlisted;
  // The scan verdict (version 3): score, the action of the reply, the reasons
  // as "RULE=score", and the recipients whose copy is quarantined instead of
  // delivered.
  bool scanned = false;
  double score = 0;
  std::string action;
  std::vector<std::string> reasons;
  std::vector<std::string> quarantined;
};

// Version 2 appended `allowlisted`, version 3 the scan verdict; older records
// still decode (as none).
inline constexpr uint8_t kEnvelopeVersion = 3;

std::string encode_envelope(const Envelope& env);
Result<Envelope> decode_envelope(std::string_view bytes);

// Shard number encoded in a message id ("....s3" -> 3), or -1.
int shard_of_message_id(std::string_view id);

}  // namespace mxguard::store
