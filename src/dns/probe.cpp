// The reachability probe of probe.hpp: a connected UDP socket, so a closed
// port on a local server fails at once (ICMP port unreachable) instead of
// waiting out the timeout.
#include "mxguard/dns/probe.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

namespace mxguard::dns {

std::string probe_query(uint16_t id) {
  // Header: id, flags RD, one question; then the root name, type NS, class IN.
  const char q[] = {static_cast<char>(id >> 8), static_cast<char>(id & 0xff), 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0,
                    0x00, 0x00, 0x02, 0x00, 0x01};
  return std::string(q, sizeof q);
}

bool is_probe_reply(std::string_view reply, uint16_t id) {
  if (reply.size() < 12) return false;
  auto byte = [&](size_t i) { return static_cast<uint8_t>(reply[i]); };
  return (uint16_t{byte(0)} << 8 | byte(1)) == id && (byte(2) & 0x80) != 0;
}

ProbeResult probe_server(std::string_view server, Millis timeout) {
  ProbeResult r;
  std::string host;
  uint16_t port = 53;
  if (!parse_host_port(server, 53, host, port)) {
    r.error = "not an IP[:port] address";
    return r;
  }
  sockaddr_storage sa{};
  socklen_t len = 0;
  if (inet_pton(AF_INET, host.c_str(), &reinterpret_cast<sockaddr_in&>(sa).sin_addr) == 1) {
    auto& in = reinterpret_cast<sockaddr_in&>(sa);
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    len = sizeof in;
  } else if (inet_pton(AF_INET6, host.c_str(), &reinterpret_cast<sockaddr_in6&>(sa).sin6_addr) == 1) {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(sa);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    len = sizeof in6;
  } else {
    r.error = "not an IP address";
    return r;
  }
  int fd = ::socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    r.error = std::strerror(errno);
    return r;
  }
  uint16_t id = 0;
  if (getrandom(&id, sizeof id, 0) != sizeof id) id = static_cast<uint16_t>(getpid());
  std::string q = probe_query(id);
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + timeout;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0 || ::send(fd, q.data(), q.size(), 0) < 0) {
    r.error = std::strerror(errno);
    ::close(fd);
    return r;
  }
  char buf[512];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.error = fmt::format("no reply within {} ms", timeout.count());
      break;
    }
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;  // the deadline check above ends it
    ssize_t got = ::recv(fd, buf, sizeof buf, 0);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      r.error = std::strerror(errno);  // "Connection refused": nothing listens there
      break;
    }
    if (is_probe_reply(std::string_view(buf, static_cast<size_t>(got)), id)) {
      r.reachable = true;
      r.rtt_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
      break;
    }
  }
  ::close(fd);
  return r;
}

}  // namespace mxguard::dns
