// The links of a quarantine digest (<public_url>/digest/<action>/<token>):
// what GET shows and what POST does, for whoever holds the mail. The token
// is the only credential; the principal is "digest:<recipient>" with the
// rights of a mail user over the recipient's addresses the message is held
// for, and the action is the quarantine's own (release trains ham, audit).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mxguard/admin/failure.hpp"
#include "mxguard/admin/quarantine.hpp"
#include "mxguard/core/config.hpp"
#include "mxguard/digest/token.hpp"
#include "mxguard/store/config_store.hpp"

namespace mxguard::admin {

// Why a link does nothing, for the page to say so in plain words. Each maps
// to a Failure category (its HTTP status): invalid, forged, unknown key,
// expired and wrong action are usage (400, field "token"), gone not_found,
// used conflict, not_permitted not_permitted.
enum class LinkProblem : uint8_t {
  kInvalid,       // not a token, or an action the links do not have
  kForged,        // the signature does not match: forged or altered
  kUnknownKey,    // signed by a key this appliance does not have (any more)
  kExpired,       // past the message's retention end
  kWrongAction,   // a token for another action under this action's path
  kGone,          // the message is no longer held for the recipient
  kUsed,          // this link's action was done already
  kNotPermitted,  // the action is not a mail user's to take
  kUnavailable,   // the store could not be read or written
};
std::string_view to_string(LinkProblem p);  // "invalid", "forged", ... (the pages' data-problem)

struct LinkRefusal {
  LinkProblem problem = LinkProblem::kInvalid;
  Failure failure;
};

template <typename T>
using LinkOutcome = std::variant<T, LinkRefusal>;

// A valid, unused link and the message it acts on.
struct DigestLink {
  digest::Claims claims;
  Principal principal;             // "digest:<recipient>", link_addresses = the targets
  HeldMessage held;                // visible: the recipient's addresses the message is held for
};

// GET: checks the token (decoding, key, signature, expiry), that it is for
// `action` (the URL's), that it was not used and that the message is still
// held for the recipient, and, for release_allow, that the principal may
// allow the sender. Writes nothing.
LinkOutcome<DigestLink> inspect_digest_link(const Config& cfg, store::ConfigStore& store, std::string_view action,
                                            std::string_view token, int64_t now_ms);

struct LinkDone {
  DigestLink link;
  std::optional<Released> released;  // release, release_allow
  std::optional<Deleted> deleted;    // delete
};

// POST: everything inspect_digest_link checks, then claims the link (once)
// and acts through release_quarantined / delete_quarantined as the link's
// principal, on the recipient's held addresses.
LinkOutcome<LinkDone> follow_digest_link(const Config& cfg, store::ConfigStore& store, std::string_view action,
                                         std::string_view token, int64_t now_ms);

}  // namespace mxguard::admin
