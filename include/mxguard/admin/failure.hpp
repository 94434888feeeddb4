// What an admin operation returns when it refuses or fails: a category the
// front ends map to an exit code or an HTTP status (each in one table), and
// one line for a person.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mxguard::admin {

enum class Category {
  kUsage,         // the input is wrong: a bad value, an unknown setting, nothing to change
  kNotFound,      // no such object, or one outside the principal's tenant (no name leaks)
  kNotPermitted,  // the principal's role may not do this at all
  kConflict,      // the name is taken, or the object is still in use
  kNeedsForce,    // valid but risky (or a high-value domain): refused until confirmed
  kUnavailable,   // something underneath failed: the store, DNS
};

struct CategoryInfo {
  Category category;
  std::string_view name;  // in the API's {"error": {"category": ...}}
  int http_status;
};
// The one category -> HTTP status table (the console's exit codes are in
// src/console/exit_codes.hpp, next to the others).
inline constexpr CategoryInfo kCategories[] = {
    {Category::kUsage, "usage", 400},          {Category::kNotFound, "not_found", 404},
    {Category::kNotPermitted, "not_permitted", 403}, {Category::kConflict, "conflict", 409},
    {Category::kNeedsForce, "needs_force", 409}, {Category::kUnavailable, "unavailable", 503},
};
const CategoryInfo& category_info(Category c);

struct Failure {
  Category category = Category::kUnavailable;
  std::string message;
  // The input field the message is about ("backend", "tls"), when there is one.
  std::string field;
  // Set when a principal other than the operator was refused an object
  // outside its scope, present or not. The API answers 404 with `message`
  // ("no such domain: x", the words a missing object gets); the console
  // keeps its established "not permitted: domain x" (`console_message`)
  // and exit code.
  bool out_of_scope = false;
  std::string console_message;
};

// What the console prints for `f`.
inline const std::string& console_text(const Failure& f) {
  return f.out_of_scope && !f.console_message.empty() ? f.console_message : f.message;
}

inline Failure usage(std::string message, std::string field = {}) {
  return {Category::kUsage, std::move(message), std::move(field)};
}
inline Failure not_found(std::string message) { return {Category::kNotFound, std::move(message)}; }
// not_permitted, "not permitted: <what>".
Failure forbidden(std::string_view what);
// Another tenant's object (`kind` "domain", `name` "acme.test"), present or
// not: not_found "no such domain: acme.test", out_of_scope, so the caller
// cannot tell a missing object from someone else's.
Failure out_of_scope(std::string_view kind, std::string_view name);
inline Failure conflict(std::string message) { return {Category::kConflict, std::move(message)}; }
inline Failure unavailable(std::string message) { return {Category::kUnavailable, std::move(message)}; }

// A value or a Failure, like core's Result<T> but with a category.
template <typename T>
class [[nodiscard]] Outcome {
 public:
  Outcome(T value) : v_(std::move(value)) {}
  Outcome(Failure f) : v_(std::move(f)) {}

  explicit operator bool() const { return v_.index() == 0; }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const Failure& failure() const { return std::get<1>(v_); }

 private:
  std::variant<T, Failure> v_;
};

}  // namespace mxguard::admin
