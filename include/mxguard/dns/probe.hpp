// Is a DNS server there at all? One UDP query, any reply counts: the answer
// to "can the engine and the console reach dns.servers", not to a lookup.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mxguard/core/config.hpp"
#include "mxguard/core/result.hpp"

namespace mxguard::dns {

// A query for ". NS IN" with recursion desired (RFC 1035 4.1).
std::string probe_query(uint16_t id);
// True when `reply` is a response (QR set) to the query with this id.
bool is_probe_reply(std::string_view reply, uint16_t id);

struct ProbeResult {
  bool reachable = false;
  int64_t rtt_ms = 0;
  std::string error;  // why not, for a person
};

// Sends the probe to `server` ("ip", "ip:port", "[v6]:port") and waits at
// most `timeout` for a reply. Blocking: for the console and start-up only.
ProbeResult probe_server(std::string_view server, Millis timeout);

}  // namespace mxguard::dns
