// Message files named on the command line (scan, learn).
#include "message_files.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

namespace mxguard::console {

Result<std::vector<std::string>> expand_message_paths(const std::vector<std::string>& args) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  for (const auto& a : args) {
    std::error_code ec;
    auto st = fs::status(a, ec);
    if (ec) return Error{fmt::format("{}: {}", a, ec.message())};
    if (!fs::is_directory(st)) {
      out.push_back(a);
      continue;
    }
    std::vector<std::string> files;
    for (fs::directory_iterator it(a, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_regular_file()) files.push_back(it->path().string());
    if (ec) return Error{fmt::format("{}: {}", a, ec.message())};
    std::sort(files.begin(), files.end());
    out.insert(out.end(), files.begin(), files.end());
  }
  return out;
}

std::string_view strip_mbox_from(std::string_view data) {
  if (!data.starts_with("From ")) return data;
  size_t nl = data.find('\n');
  return nl == std::string_view::npos ? std::string_view{} : data.substr(nl + 1);
}

Result<std::string> read_message_file(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("{}: {}", path, std::strerror(errno))};
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Error{fmt::format("{}: read error", path)};
  if (data.size() > max_bytes) return Error{fmt::format("{}: larger than {} bytes", path, max_bytes)};
  std::string_view body = strip_mbox_from(data);
  if (body.size() != data.size()) data.erase(0, data.size() - body.size());
  return data;
}

}  // namespace mxguard::console
