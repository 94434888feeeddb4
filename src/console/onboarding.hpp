// The onboarding rules live in the admin library; the console's commands name them unqualified.
#pragma once

#include "exit_codes.hpp"
#include "mxguard/admin/blocklist.hpp"
#include "mxguard/admin/dns_report.hpp"
#include "mxguard/admin/onboarding.hpp"

namespace mxguard::console {

using admin::Blocklist;
using admin::kVerifyTtl;
using admin::lookup_failure;
using admin::make_resolver;
using admin::mx_records;
using admin::MxRecord;
using admin::normalize_domain;
using admin::verification_name;

}  // namespace mxguard::console
