// Users with roles, and the audit log of every change made through the console.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/result.hpp"

namespace mxguard::store {

enum class Role : uint8_t { kOperator, kCustomerAdmin, kPostmaster, kUser };
std::string_view to_string(Role r);
std::optional<Role> role_from_string(std::string_view s);  // operator, customer-admin, postmaster, user

struct User {
  std::string name;
  Role role = Role::kUser;
  std::string customer;              // customer-admin, postmaster, user: their customer
  std::string domain;                // postmaster: the one domain
  std::string address;               // user: their own address
  std::vector<std::string> shadows;  // user: further addresses seen as theirs
  std::string password_hash;         // Argon2id (libsodium crypto_pwhash_str), never printed
  bool digest = true;                // user: whether they get the daily quarantine digest
  int64_t created_ms = 0;
};

std::string encode_user(const User& u);
Result<User> decode_user(std::string_view bytes);

struct AuditEntry {
  int64_t time_ms = 0;
  std::string principal;
  std::string action;  // "domain.set", "list.add", ...
  std::string object;  // what was changed, e.g. "example.com"
  std::string before;  // JSON text, secrets masked; "" when created
  std::string after;   // JSON text, secrets masked; "" when removed
  // Whose object it was, for scoping the log: the customer ("" = the
  // appliance's own, seen by operators only, as are entries written before
  // these fields existed) and, within it, the domain ("" = customer-wide).
  std::string customer;
  std::string domain;
};

std::string encode_audit(const AuditEntry& e);
Result<AuditEntry> decode_audit(std::string_view bytes);

}  // namespace mxguard::store
