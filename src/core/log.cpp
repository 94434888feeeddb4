// Writes key=value event lines to stderr (the journal, under systemd). Lines
// go through a buffer drained by a background thread, so an event loop never
// blocks on a slow log reader; if the buffer is full, lines are dropped and
// counted rather than stalling mail.
#include "mxguard/core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace mxguard::log {

namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
constexpr std::string_view kNames[] = {"debug", "info", "warn", "error"};
constexpr size_t kMaxBuffered = 8 << 20;
constexpr size_t kWakeBytes = 64 << 10;
constexpr std::chrono::milliseconds kFlushInterval{100};

void write_all(std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
    if (n <= 0) return;
    s.remove_prefix(static_cast<size_t>(n));
  }
}

class AsyncSink {
 public:
  void push(std::string&& line) {
    std::unique_lock lock(mu_);
    if (!async_) {
      lock.unlock();
      write_all(line);
      return;
    }
    if (buf_.size() + line.size() > kMaxBuffered) {
      ++dropped_;
      return;
    }
    buf_ += line;
    // The writer wakes on its own every kFlushInterval; waking it per line
    // would cost a context switch per event on a busy shard.
    bool wake = buf_.size() >= kWakeBytes;
    lock.unlock();
    if (wake) cv_.notify_one();
  }

  void start() {
    std::lock_guard lock(mu_);
    if (async_) return;
    async_ = true;
    stop_ = false;
    thread_ = std::thread([this] { run(); });
  }

  void stop() {
    {
      std::lock_guard lock(mu_);
      if (!async_) return;
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
    std::lock_guard lock(mu_);
    async_ = false;
  }

 private:
  void run() {
    std::string local;
    while (true) {
      uint64_t dropped;
      bool stop;
      {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, kFlushInterval, [&] { return buf_.size() >= kWakeBytes || stop_; });
        if (buf_.empty() && !stop_) continue;
        local.swap(buf_);
        dropped = dropped_;
        dropped_ = 0;
        stop = stop_;
      }
      write_all(local);
      local.clear();
      if (dropped) write_all("level=warn event=log.dropped lines=" + std::to_string(dropped) + "\n");
      if (stop) {
        std::lock_guard lock(mu_);
        if (buf_.empty()) return;
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::string buf_;
  uint64_t dropped_ = 0;
  bool async_ = false;
  bool stop_ = false;
  std::thread thread_;
};

AsyncSink& sink() {
  static AsyncSink s;
  return s;
}
}  // namespace

void set_level(Level level) { g_level.store(static_cast<int>(level)); }
bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }
void start_async() { sink().start(); }
void stop_async() { sink().stop(); }

void write_line(Level level, std::string_view event, std::string_view fields) {
  std::string line = fmt::format("level={} event={}{}{}\n", kNames[static_cast<int>(level)], event,
                                 fields.empty() ? "" : " ", fields);
  sink().push(std::move(line));
}

std::string q(std::string_view value) {
  bool needs = value.empty();
  for (unsigned char c : value)
    if (c <= ' ' || c == '"' || c == '\\' || c == 0x7f) needs = true;
  if (!needs) return std::string(value);
  std::string out = "\"";
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < ' ' || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

}  // namespace mxguard::log
