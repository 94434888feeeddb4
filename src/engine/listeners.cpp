// Listening sockets for the shards, and the check that keeps a second
// process from joining our SO_REUSEPORT group unnoticed.
#include "listeners.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <fmt/format.h>

namespace mxguard::engine {

namespace {

struct SocketAddress {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
};

SocketAddress socket_address(const ListenAddress& a) {
  SocketAddress out;
  if (a.host.find(':') != std::string::npos) {
    auto& s6 = reinterpret_cast<sockaddr_in6&>(out.ss);
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(a.port);
    inet_pton(AF_INET6, a.host.c_str(), &s6.sin6_addr);
    out.len = sizeof s6;
    out.family = AF_INET6;
  } else {
    auto& s4 = reinterpret_cast<sockaddr_in&>(out.ss);
    s4.sin_family = AF_INET;
    s4.sin_port = htons(a.port);
    inet_pton(AF_INET, a.host.c_str(), &s4.sin_addr);
    out.len = sizeof s4;
  }
  return out;
}

// Options both sockets share, so that the probe binds exactly where the
// listener will: IPv6 sockets are v6-only (an IPv4 wildcard on the same port
// is another address), and SO_REUSEADDR lets a restart bind over the old
// process's TIME_WAIT connections while Linux still refuses it next to a
// live listener.
int new_socket(const SocketAddress& sa) {
  int fd = socket(sa.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (sa.family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  return fd;
}

}  // namespace

Status check_address_free(const ListenAddress& a, std::chrono::milliseconds grace) {
  SocketAddress sa = socket_address(a);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (true) {
    int fd = new_socket(sa);
    if (fd < 0) return Error{fmt::format("socket for {}: {}", a.to_string(), std::strerror(errno))};
    int rc = bind(fd, reinterpret_cast<sockaddr*>(&sa.ss), sa.len);
    int err = errno;
    close(fd);
    if (rc == 0) return Status::success();
    if (err != EADDRINUSE)
      return Error{fmt::format("cannot listen on {} (smtp.listen): {}", a.to_string(), std::strerror(err))};
    if (std::chrono::steady_clock::now() >= deadline)
      return Error{fmt::format("cannot listen on {} (smtp.listen): in use by another process "
                               "(another mxguardd with its own state_dir, or another MTA)", a.to_string())};
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Result<int> open_listener(const ListenAddress& a) {
  SocketAddress sa = socket_address(a);
  int fd = new_socket(sa);
  if (fd < 0) return Error{fmt::format("socket for {}: {}", a.to_string(), std::strerror(errno))};
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  // Accepted sockets inherit TCP_NODELAY: replies are whole and must not wait for an ACK.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa.ss), sa.len) != 0) {
    int err = errno;
    close(fd);
    return Error{fmt::format("cannot listen on {} (smtp.listen): {}", a.to_string(), std::strerror(err))};
  }
  if (listen(fd, 4096) != 0) {
    int err = errno;
    close(fd);
    return Error{fmt::format("listen on {}: {}", a.to_string(), std::strerror(err))};
  }
  return fd;
}

Result<int> open_single_listener(const ListenAddress& a, std::string_view key) {
  SocketAddress sa = socket_address(a);
  int fd = new_socket(sa);
  if (fd < 0) return Error{fmt::format("socket for {}: {}", a.to_string(), std::strerror(errno))};
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa.ss), sa.len) != 0 || listen(fd, 64) != 0) {
    int err = errno;
    close(fd);
    return Error{fmt::format("cannot listen on {} ({}): {}", a.to_string(), key, std::strerror(err))};
  }
  return fd;
}

}  // namespace mxguard::engine
