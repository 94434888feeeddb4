// The console's exit statuses: one table, used by the commands and shown by
// `mxguard --help`, so scripts and people read the same contract.
#pragma once

#include <string_view>

#include "mxguard/admin/failure.hpp"

namespace mxguard::console {

inline constexpr int kExitOk = 0;
// The input was fine but something failed underneath, or the command found
// a problem it reports (a domain not verified yet, an MX set needing attention).
inline constexpr int kExitRuntime = 1;
// The input was wrong: an unknown command or option, a bad value, a missing object.
inline constexpr int kExitUsage = 2;
// Refused until confirmed with --force: a domain on the high-value blocklist,
// or a risky setting. Nothing was written.
inline constexpr int kExitNeedsForce = 3;
inline constexpr int kExitBlocklisted = kExitNeedsForce;
// The name is taken, or the object is still in use.
inline constexpr int kExitTaken = 4;
// The principal (--as USER) may not do this, or may not see the object.
inline constexpr int kExitNotPermitted = 5;

struct ExitCodeMeaning {
  int code;
  std::string_view meaning;
};
inline constexpr ExitCodeMeaning kExitCodes[] = {
    {kExitOk, "success"},
    {kExitRuntime, "failed underneath (store, DNS, engine), or a problem found (domain not verified, MX set needs "
                   "attention, scan error)"},
    {kExitUsage, "wrong input: unknown command or option, bad value, no such object"},
    {kExitNeedsForce, "refused until confirmed with --force: a high-value blocklisted domain or a risky setting "
                      "(nothing written)"},
    {kExitTaken, "conflict: the name is taken or the object is still in use"},
    {kExitNotPermitted, "not permitted for this user (--as), or another tenant's object"},
};

// The one table from an admin operation's failure category to an exit code.
struct CategoryExit {
  admin::Category category;
  int code;
};
inline constexpr CategoryExit kCategoryExits[] = {
    {admin::Category::kUsage, kExitUsage},
    {admin::Category::kNotFound, kExitUsage},
    {admin::Category::kNotPermitted, kExitNotPermitted},
    {admin::Category::kConflict, kExitTaken},
    {admin::Category::kNeedsForce, kExitNeedsForce},
    {admin::Category::kUnavailable, kExitRuntime},
};

// The exit code for `f`. A refusal outside the principal's scope (--as) has
// always been "not permitted" at the console, missing object or not, so
// scripts see one code for both; the API answers 404 for it.
inline int exit_code_for(const admin::Failure& f) {
  if (f.out_of_scope) return kExitNotPermitted;
  for (const CategoryExit& e : kCategoryExits)
    if (e.category == f.category) return e.code;
  return kExitRuntime;
}

}  // namespace mxguard::console
