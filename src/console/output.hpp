// Console output: aligned tables for people, one JSON object per line for scripts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace mxguard::console {

// Writes `j` compactly on one line. Invalid UTF-8 (raw mail headers) is
// replaced rather than thrown on, so one odd subject cannot abort a listing.
void print_json_line(const nlohmann::ordered_json& j);

// Escapes control bytes as \xNN so text taken from mail (subjects, HELO
// names) cannot move the cursor or inject terminal escape sequences.
std::string printable(std::string_view s);

// Shortens `s` to at most `max` characters (UTF-8 aware), marking the cut with "...".
std::string truncate(std::string_view s, size_t max);

// "2024-05-01T12:00:00Z" and "2024-05-01T12:00:00.123Z" for milliseconds since the epoch.
std::string iso8601(int64_t epoch_ms);
std::string iso8601_ms(int64_t epoch_ms);

// Milliseconds since the epoch, from the system clock.
int64_t now_ms();

// Columns padded to the widest cell; cells are made printable on output.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  void add_row(std::vector<std::string> cells);
  void print() const;
  size_t rows() const { return rows_.size(); }

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// "1 domain" / "3 domains".
std::string count_of(size_t n, std::string_view singular, std::string_view plural);

}  // namespace mxguard::console
