// The console's exit statuses: one table, used by the commands and shown by
// `mxguard --help`, so scripts and people read the same contract.
#pragma once

#include <string_view>

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

}  // namespace mxguard::console
