// Domain verification tokens from the kernel's CSPRNG.
#pragma once

#include <string>

#include "mxguard/core/result.hpp"

namespace mxguard::admin {

// "mxg-" + 32 base62 characters (about 190 bits), unguessable so that only
// whoever controls the domain's DNS can publish it.
Result<std::string> new_verify_token();

}  // namespace mxguard::admin
