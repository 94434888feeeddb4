// Principals, tenant isolation rules and audit entries for the console.
#include "access.hpp"

#include <pwd.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "console.hpp"
#include "output.hpp"

namespace mxguard::console {

Result<Principal> resolve_principal(const store::ConfigStore& store, std::string_view as_user) {
  Principal p;
  if (as_user.empty()) {
    const passwd* pw = getpwuid(getuid());
    p.name = fmt::format("console:{}", pw ? pw->pw_name : std::to_string(getuid()));
    p.role = store::Role::kOperator;
    return p;
  }
  auto u = store.user(as_user);
  if (!u) return Error{u.error()};
  if (!*u) return Error{fmt::format("no such user: {}", as_user)};
  p.name = (*u)->name;
  p.role = (*u)->role;
  p.customer = (*u)->customer;
  p.domain = (*u)->domain;
  return p;
}

bool is_operator(const Principal& p) { return p.role == store::Role::kOperator; }

bool may_manage_domain(const Principal& p, const store::Domain& d) {
  switch (p.role) {
    case store::Role::kOperator: return true;
    case store::Role::kCustomerAdmin: return !p.customer.empty() && d.customer == p.customer;
    case store::Role::kPostmaster: return d.name == p.domain && d.customer == p.customer;
    case store::Role::kUser: return false;
  }
  return false;
}

bool may_manage_customer(const Principal& p, std::string_view customer) {
  return is_operator(p) || (p.role == store::Role::kCustomerAdmin && p.customer == customer);
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

nlohmann::ordered_json domain_record(const store::Domain& d) {
  return nlohmann::ordered_json::parse(store::encode_domain(d).substr(1));
}

std::string not_permitted(std::string_view what) { return fmt::format("not permitted: {}", what); }

Result<store::Domain> domain_for(const store::ConfigStore& store, const Principal& p, std::string_view name,
                                 int& exit_code) {
  auto d = store.domain(name);
  exit_code = kExitRuntime;
  if (!d) return Error{d.error()};
  if (*d && may_manage_domain(p, **d)) return std::move(**d);
  if (!is_operator(p)) {
    exit_code = kExitNotPermitted;
    return Error{not_permitted(fmt::format("domain {}", name))};
  }
  exit_code = kExitUsage;
  return Error{fmt::format("no such domain: {}", name)};
}

namespace {
void mask_secrets(nlohmann::ordered_json& j) {
  if (!j.is_object()) return;
  for (auto& [k, v] : j.items())
    if (k.find("password") != std::string::npos || k.find("secret") != std::string::npos ||
        k.find("token") != std::string::npos)
      v = "***";
}
}  // namespace

Status audit(store::ConfigStore& store, const Principal& p, std::string_view action, std::string_view object,
             const nlohmann::ordered_json& before, const nlohmann::ordered_json& after) {
  store::AuditEntry e;
  e.time_ms = now_ms();
  e.principal = p.name;
  e.action = std::string(action);
  e.object = std::string(object);
  auto b = before, a = after;
  mask_secrets(b);
  mask_secrets(a);
  e.before = b.is_null() ? "" : b.dump();
  e.after = a.is_null() ? "" : a.dump();
  return store.append_audit(e);
}

}  // namespace mxguard::console
