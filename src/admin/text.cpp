// Text and time helpers shared by the console and the web API.
#include "mxguard/admin/text.hpp"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <utility>

namespace mxguard::admin {

namespace {

// Floor division, so times before 1970 still split into seconds and millis correctly.
std::pair<int64_t, int64_t> split_ms(int64_t epoch_ms) {
  int64_t secs = epoch_ms / 1000;
  int64_t ms = epoch_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  return {secs, ms};
}

std::string utc_seconds(int64_t secs) {
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  if (!gmtime_r(&t, &tm)) return "invalid-time";
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out;
}

std::string iso8601(int64_t epoch_ms) { return utc_seconds(split_ms(epoch_ms).first) + "Z"; }

std::string iso8601_ms(int64_t epoch_ms) {
  auto [secs, ms] = split_ms(epoch_ms);
  return fmt::format("{}.{:03}Z", utc_seconds(secs), ms);
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string count_of(size_t n, std::string_view singular, std::string_view plural) {
  return fmt::format("{} {}", n, n == 1 ? singular : plural);
}

}  // namespace mxguard::admin
