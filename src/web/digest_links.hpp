// The pages behind a quarantine digest's links, /digest/<action>/<token>:
// GET shows the message and one confirm button, POST (same Origin) acts.
// Server-rendered HTML without script; every value from mail is escaped.
// No login: the signed token is the credential, checked by the admin library.
#pragma once

#include <optional>

#include "mxguard/core/config.hpp"
#include "mxguard/store/config_store.hpp"
#include "web_core.hpp"

namespace mxguard::web {

class DigestLinks {
 public:
  DigestLinks(const Config& cfg, store::ConfigStore& store) : cfg_(cfg), store_(store) {}
  // The page for a /digest/ request, or nullopt when the path is not one.
  std::optional<Response> handle(const Request& req, bool same_origin);

 private:
  const Config& cfg_;
  store::ConfigStore& store_;
};

}  // namespace mxguard::web
