// The state dir's engine lock (see instance_lock.hpp).
#include "instance_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace mxguard::engine {

namespace {

// The PID a holder wrote, or 0 when the file has none yet (the holder is
// between its flock and its write).
long recorded_pid(int fd) {
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  long pid = 0;
  for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9' && pid < 100'000'000; ++i)
    pid = pid * 10 + (buf[i] - '0');
  return pid;
}

}  // namespace

Result<InstanceLock> InstanceLock::acquire(const std::string& state_dir) {
  if (::mkdir(state_dir.c_str(), 0750) != 0 && errno != EEXIST)
    return Error{fmt::format("state_dir {}: {}", state_dir, std::strerror(errno))};
  std::string path = state_dir + "/mxguardd.pid";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Error{fmt::format("state_dir {}: cannot open {}: {}", state_dir, path, std::strerror(errno))};
  // flock, not fcntl: an fcntl lock is lost when any descriptor of the file
  // in the process is closed, and LMDB's own locks are fcntl ones.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    long pid = err == EWOULDBLOCK ? recorded_pid(fd) : 0;
    ::close(fd);
    if (err != EWOULDBLOCK) return Error{fmt::format("state_dir {}: lock {}: {}", state_dir, path, std::strerror(err))};
    std::string holder = pid > 0 ? fmt::format("mxguardd pid {}", pid) : std::string("another mxguardd");
    return Error{fmt::format("state_dir {} is in use by {} (lock held on {}); one engine per state dir",
                             state_dir, holder, path)};
  }
  std::string text = fmt::format("{}\n", getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    int err = errno;
    ::close(fd);
    return Error{fmt::format("state_dir {}: cannot write {}: {}", state_dir, path, std::strerror(err))};
  }
  return InstanceLock(fd, std::move(path));
}

InstanceLock::~InstanceLock() {
  if (fd_ < 0) return;
  // Emptied while still held, so the file never names a stopped engine
  // after a clean exit; the file stays: unlinking a lock file races with
  // the next engine opening it.
  (void)::ftruncate(fd_, 0);
  ::close(fd_);
}

}  // namespace mxguard::engine
