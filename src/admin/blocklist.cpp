// Loading and matching the high-value domain blocklist.
#include "mxguard/admin/blocklist.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fmt/format.h>
#include <fstream>
#include <sstream>
#include <vector>

#include "mxguard/core/strings.hpp"
#include "mxguard/smtp/address.hpp"

namespace mxguard::admin {

Result<Blocklist> Blocklist::parse(std::string_view text, std::string_view origin) {
  Blocklist b;
  size_t lineno = 0;
  for (size_t pos = 0; pos <= text.size();) {
    size_t eol = text.find('\n', pos);
    std::string_view line = text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? text.size() + 1 : eol + 1;
    ++lineno;
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    std::string name = to_lower(line);
    if (!smtp::valid_domain(name, false))
      return Error{fmt::format("{}:{}: '{}' is not a domain name", origin, lineno, line)};
    b.names_.insert(std::move(name));
  }
  return b;
}

Result<Blocklist> Blocklist::load_default() {
  std::vector<std::string> candidates;
  if (const char* dir = std::getenv("MXGUARD_RULES_DIR"); dir && *dir) candidates.push_back(dir);
  candidates.push_back(MXGUARD_RULES_INSTALL_DIR);
  candidates.push_back(MXGUARD_RULES_SOURCE_DIR);
  for (const auto& dir : candidates) {
    std::string path = dir + "/high-value-domains.txt";
    std::ifstream in(path);
    if (!in) continue;
    std::stringstream ss;
    ss << in.rdbuf();
    return parse(ss.str(), path);
  }
  return Error{fmt::format("high-value-domains.txt not found in {}", fmt::join(candidates, ", "))};
}

std::optional<std::string> Blocklist::match(std::string_view domain) const {
  for (std::string_view d = domain; !d.empty();) {
    if (auto it = names_.find(d); it != names_.end()) return *it;
    size_t dot = d.find('.');
    d = dot == std::string_view::npos ? std::string_view() : d.substr(dot + 1);
  }
  return std::nullopt;
}

}  // namespace mxguard::admin
