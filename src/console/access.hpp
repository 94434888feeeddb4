// Who runs a console command: the operator at the appliance or `--as USER`.
// The rules of what a principal may touch live in the admin library
// (mxguard/admin/access.hpp); this adds what only a terminal has.
#pragma once

#include <string>
#include <string_view>

#include "exit_codes.hpp"
#include "mxguard/admin/access.hpp"
#include "mxguard/core/result.hpp"
#include "mxguard/store/config_store.hpp"

namespace mxguard::console {

using admin::audit;
using admin::domain_record;
using admin::is_operator;
using admin::may_manage_customer;
using admin::may_manage_domain;
using admin::Principal;

// The operator at the console (default), or `--as USER` looked up in the store.
Result<Principal> resolve_principal(const store::ConfigStore& store, std::string_view as_user);

// Loads a domain the principal may manage (admin::managed_domain), with the
// exit code of its refusal.
Result<store::Domain> domain_for(const store::ConfigStore& store, const Principal& p, std::string_view name,
                                 int& exit_code);

std::string not_permitted(std::string_view what);

// Reads a secret from a file or "-" (stdin), without its final newline; never from argv.
Result<std::string> read_secret_file(const std::string& path);

}  // namespace mxguard::console
