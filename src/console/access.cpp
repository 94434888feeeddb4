// The console's principal (its login or --as) and file-borne secrets.
#include "access.hpp"

#include <pwd.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <sstream>

namespace mxguard::console {

Result<Principal> resolve_principal(const store::ConfigStore& store, std::string_view as_user) {
  if (as_user.empty()) {
    const passwd* pw = getpwuid(getuid());
    Principal p;
    p.name = fmt::format("console:{}", pw ? pw->pw_name : std::to_string(getuid()));
    p.role = store::Role::kOperator;
    return p;
  }
  auto p = admin::user_principal(store, as_user);
  if (!p) return Error{p.failure().message};
  return std::move(*p);
}

Result<std::string> read_secret_file(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) return Error{fmt::format("cannot read {}", path)};
    ss << in.rdbuf();
  }
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string not_permitted(std::string_view what) { return admin::forbidden(what).message; }

Result<store::Domain> domain_for(const store::ConfigStore& store, const Principal& p, std::string_view name,
                                 int& exit_code) {
  auto d = admin::managed_domain(store, p, name);
  if (!d) {
    exit_code = exit_code_for(d.failure());
    return Error{console_text(d.failure())};
  }
  exit_code = kExitRuntime;
  return std::move(*d);
}

}  // namespace mxguard::console
