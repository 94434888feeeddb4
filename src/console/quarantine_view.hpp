// The quarantine's scope, JSON and safe preview live in the admin library
// (mxguard/admin/quarantine_view.hpp); the console names them unqualified.
#pragma once

#include "access.hpp"
#include "mxguard/admin/quarantine_view.hpp"

namespace mxguard::console {

using admin::make_preview;
using admin::parse_time_arg;
using admin::Preview;
using admin::preview_json;
using admin::quarantine_json;
using admin::QuarantineScope;
using admin::reasons_json;
using admin::terminal_safe;

}  // namespace mxguard::console
