// A domain's recipients, allow/block lists and MX check over the admin
// library (admin/recipients, admin/lists, admin/mx_check); the global lists
// at /api/v1/lists. Like DomainsApi: JSON in and out, no check of its own.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mxguard/admin/access.hpp"
#include "mxguard/core/config.hpp"
#include "mxguard/store/config_store.hpp"
#include "web_core.hpp"

namespace mxguard::web {

class RecipientsApi {
 public:
  RecipientsApi(const Config& cfg, store::ConfigStore& store) : cfg_(cfg), store_(store) {}
  // The response for /api/v1/domains/{d}/recipients..., /lists..., /mx-check
  // and /api/v1/lists...; nullopt for any other path.
  std::optional<Response> handle(const Request& req, const Session* s);

 private:
  Response recipients(const admin::Principal& p, const Request& req, const std::string& domain,
                      std::string_view rest);
  Response lists(const admin::Principal& p, const Request& req, const std::string& domain, std::string_view rest);
  Response mx_check(const admin::Principal& p, const std::string& domain);

  const Config& cfg_;
  store::ConfigStore& store_;
};

}  // namespace mxguard::web
