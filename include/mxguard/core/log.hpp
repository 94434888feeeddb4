// Structured logging: one line per event, key=value pairs, carrying the message id.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace mxguard::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(Level level);
// Daemons call start_async() once at start-up and stop_async() before exit
// (which flushes); until then lines are written synchronously.
void start_async();
void stop_async();
bool enabled(Level level);
void write_line(Level level, std::string_view event, std::string_view fields);

// Quotes a value for key=value output when it contains spaces, quotes or
// control bytes; control bytes are escaped so one event stays one line.
std::string q(std::string_view value);

template <typename... Args>
void emit(Level level, std::string_view event, fmt::format_string<Args...> f, Args&&... args) {
  if (!enabled(level)) return;
  write_line(level, event, fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
void debug(std::string_view event, fmt::format_string<Args...> f, Args&&... args) {
  emit(Level::debug, event, f, std::forward<Args>(args)...);
}
template <typename... Args>
void info(std::string_view event, fmt::format_string<Args...> f, Args&&... args) {
  emit(Level::info, event, f, std::forward<Args>(args)...);
}
template <typename... Args>
void warn(std::string_view event, fmt::format_string<Args...> f, Args&&... args) {
  emit(Level::warn, event, f, std::forward<Args>(args)...);
}
template <typename... Args>
void error(std::string_view event, fmt::format_string<Args...> f, Args&&... args) {
  emit(Level::error, event, f, std::forward<Args>(args)...);
}

}  // namespace mxguard::log
