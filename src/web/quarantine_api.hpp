// /api/v1/quarantine and /api/v1/me over the admin library: JSON in, the
// operation's typed input, its result (or Failure) back as JSON. Scope and
// validation are the library's (admin/quarantine.hpp).
#pragma once

#include <mutex>
#include <optional>

#include "mxguard/core/config.hpp"
#include "mxguard/store/config_store.hpp"
#include "web_core.hpp"

namespace mxguard::web {

class QuarantineApi {
 public:
  QuarantineApi(const Config& cfg, store::ConfigStore& store) : cfg_(cfg), store_(store) {}
  // The response for a /api/v1/quarantine or /api/v1/me request by session
  // `s` (null: 401), or nullopt when the path is not this API's.
  std::optional<Response> handle(const Request& req, const Session* s);

 private:
  const Config& cfg_;
  store::ConfigStore& store_;
};

}  // namespace mxguard::web
