// The field checks live in the admin library; the console's commands name them unqualified.
#pragma once

#include "mxguard/admin/validate.hpp"

namespace mxguard::console {

using admin::Backend;
using admin::check_auth_user;
using admin::check_choice;
using admin::check_customer_name;
using admin::check_message_id;
using admin::format_backend;
using admin::numeric_tld;
using admin::parse_backend;
using admin::static_network_lines;

}  // namespace mxguard::console
