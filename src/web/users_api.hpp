// /api/v1/users and /api/v1/audit over the admin library: JSON in, the
// operation's typed input, its result (or Failure) back as JSON. Who may
// see, add, change or reset whom is admin/users.hpp's, not this file's.
#pragma once

#include <optional>

#include "mxguard/core/config.hpp"
#include "mxguard/store/config_store.hpp"
#include "web_core.hpp"

namespace mxguard::web {

class UsersApi {
 public:
  UsersApi(const Config& cfg, store::ConfigStore& store) : cfg_(cfg), store_(store) {}
  // The response for a /api/v1/users or /api/v1/audit request by session
  // `s` (null: 401), or nullopt when the path is not this API's.
  std::optional<Response> handle(const Request& req, const Session* s);

 private:
  const Config& cfg_;
  store::ConfigStore& store_;
};

}  // namespace mxguard::web
