// One engine per state dir: an flock(2) on state_dir/mxguardd.pid, held for
// the life of the process.
#pragma once

#include <string>

#include "mxguard/core/result.hpp"

namespace mxguard::engine {

class InstanceLock {
 public:
  // Takes the lock and writes our PID into the file. Fails, naming the PID
  // the file records, while another process holds it. The kernel drops the
  // lock with the process (exit, crash, kill -9), so a file left behind by a
  // dead engine is simply taken over.
  static Result<InstanceLock> acquire(const std::string& state_dir);

  InstanceLock(InstanceLock&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  InstanceLock& operator=(InstanceLock&&) = delete;
  InstanceLock(const InstanceLock&) = delete;
  ~InstanceLock();

  const std::string& path() const { return path_; }

 private:
  InstanceLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

}  // namespace mxguard::engine
