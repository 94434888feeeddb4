// Human tables, JSON lines and timestamp formatting for the console.
#include "output.hpp"

#include <fmt/format.h>

#include <cstdio>

namespace mxguard::console {

namespace {

bool is_utf8_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Characters a terminal shows, not bytes: keeps columns aligned for UTF-8 text.
size_t display_width(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if (!is_utf8_continuation(c)) ++n;
  return n;
}

void print_row(const std::vector<std::string>& cells, const std::vector<size_t>& widths) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    std::string cell = printable(cells[i]);
    line += cell;
    // The last column is not padded: no trailing blanks.
    if (i + 1 < cells.size()) line.append(widths[i] - display_width(cell) + 2, ' ');
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
}

}  // namespace

void print_json_line(const nlohmann::ordered_json& j) {
  std::string line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
}

std::string truncate(std::string_view s, size_t max) {
  if (display_width(s) <= max) return std::string(s);
  size_t keep = max > 3 ? max - 3 : 0;
  size_t chars = 0, end = 0;
  for (; end < s.size(); ++end) {
    if (!is_utf8_continuation(static_cast<unsigned char>(s[end])) && chars++ == keep) break;
  }
  return std::string(s.substr(0, end)) + "...";
}

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void Table::add_row(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

void Table::print() const {
  std::vector<size_t> widths(headers_.size());
  for (size_t i = 0; i < headers_.size(); ++i) widths[i] = display_width(headers_[i]);
  for (const auto& row : rows_)
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], display_width(printable(row[i])));
  print_row(headers_, widths);
  for (const auto& row : rows_) print_row(row, widths);
}

}  // namespace mxguard::console
