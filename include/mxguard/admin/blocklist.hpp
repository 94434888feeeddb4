// The high-value domain blocklist (rules/high-value-domains.txt): names that
// need an operator's --force, each covering its subdomains.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "mxguard/core/result.hpp"

namespace mxguard::admin {

class Blocklist {
 public:
  // Parses the file's text; a malformed line is an error naming its number.
  static Result<Blocklist> parse(std::string_view text, std::string_view origin);
  // Loads the installed list ($MXGUARD_RULES_DIR, the install dir, or the source tree).
  static Result<Blocklist> load_default();
  // The listed name that covers `domain` (itself or a parent), if any.
  std::optional<std::string> match(std::string_view domain) const;
  size_t size() const { return names_.size(); }

 private:
  std::set<std::string, std::less<>> names_;
};

}  // namespace mxguard::admin
