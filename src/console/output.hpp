// Console output: aligned tables for people, one JSON object per line for scripts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/admin/text.hpp"

namespace mxguard::console {

using admin::count_of;
using admin::iso8601;
using admin::iso8601_ms;
using admin::now_ms;
using admin::printable;

// Writes `j` compactly on one line. Invalid UTF-8 (raw mail headers) is
// replaced rather than thrown on, so one odd subject cannot abort a listing.
void print_json_line(const nlohmann::ordered_json& j);

// Shortens `s` to at most `max` characters (UTF-8 aware), marking the cut with "...".
std::string truncate(std::string_view s, size_t max);

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

}  // namespace mxguard::console
