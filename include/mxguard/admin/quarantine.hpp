// The quarantine operations behind `mxguard quarantine ...` and
// /api/v1/quarantine: list/search, the safe preview, release (optionally
// allowing the sender), delete. Each works within the principal's
// QuarantineScope; another tenant's message is not_found (out_of_scope).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/admin/domains.hpp"
#include "mxguard/admin/failure.hpp"
#include "mxguard/admin/quarantine_view.hpp"
#include "mxguard/store/quarantine.hpp"

namespace mxguard::admin {

// A held message and the held recipients the principal may see.
struct HeldMessage {
  store::QuarantineRecord record;
  std::vector<std::string> visible;
};

// The search of `quarantine list` / GET /api/v1/quarantine; strings as typed.
struct QuarantineFilter {
  std::string domain, recipient, search;
  std::string since, until;  // parse_time_arg forms
};

// Oldest first. A recipient or domain outside the scope is refused
// (out_of_scope); bad input is usage with the field named.
Outcome<std::vector<HeldMessage>> list_quarantine(const Actor& a, const QuarantineFilter& f);

// One page of the same search, newest first.
inline constexpr size_t kQuarantinePageDefault = 100;
inline constexpr size_t kQuarantinePageMax = 1000;
struct QuarantinePageRequest {
  std::string limit;   // as typed: 1..kQuarantinePageMax, "" for kQuarantinePageDefault
  std::string before;  // as typed: "" for the newest, else a page's `next`
};
struct QuarantinePage {
  std::vector<HeldMessage> rows;
  std::string next;  // the `before` of the following (older) page; "" when there is none
};
// Costs about `limit` index and record reads per spool shard (plus the
// messages the search text turns down), however many are held. A bad limit
// or cursor is usage naming "limit" or "before".
Outcome<QuarantinePage> quarantine_page(const Actor& a, const QuarantineFilter& f, const QuarantinePageRequest& page);
// The opaque cursor of a page ending at `h`, and back (nullopt: not one).
std::string quarantine_cursor(const HeldMessage& h);
std::optional<store::QuarantinePosition> parse_quarantine_cursor(std::string_view cursor);

struct ShownMessage {
  HeldMessage held;
  Preview preview;
};
Outcome<ShownMessage> show_quarantined(const Actor& a, std::string_view id);
// The record and its safe preview as one JSON object (`quarantine show --json`).
nlohmann::ordered_json shown_json(const ShownMessage& m);

// Which held recipients a release or delete acts on: the named ones (each
// held and visible), or every visible one when none is named.
struct QuarantineAction {
  std::string id;
  std::vector<std::string> recipients;
  bool allow_sender = false;  // release: add the sender to each target domain's allow list
  bool learn_spam = false;    // delete: train the Bayes model with it as spam
};

struct Released {
  std::string id, queued_id;
  std::vector<std::string> recipients;
  std::vector<std::string> allowed_in;  // domains whose allow list got the sender
  std::string warning;                  // the action was done, but its tracking event was not written
};
// Trains Bayes as ham, queues a copy for the targets through the normal
// queue, writes the tracking event and the audit entry.
Outcome<Released> release_quarantined(const Actor& a, const QuarantineAction& in);

// The allow-list entries a release with allow_sender adds: the sender in
// each target's domain, which the principal must manage (users and digest
// links do not: a domain's allow list is its admins'). Writes nothing.
Outcome<std::vector<store::ListEntry>> sender_allow_entries(const Actor& a, const HeldMessage& h,
                                                           const std::vector<std::string>& targets);

struct Deleted {
  std::string id;
  std::vector<std::string> recipients;
  bool learned_spam = false;
  bool unreadable = false;  // an operator cleared a record that no longer decodes
  std::string warning;
};
Outcome<Deleted> delete_quarantined(const Actor& a, const QuarantineAction& in);

// The Bayes key of a message (SHA-256 of its bytes, hex), the same for
// `mxguard learn` and the quarantine's release and delete, so learning a
// message both ways moves it instead of counting it twice.
std::string learn_key(std::string_view data);

// An address as typed (local@domain, printable, no spaces), lower case;
// usage with `field` otherwise.
Outcome<std::string> quarantine_address(std::string_view typed, std::string field = "recipient");

}  // namespace mxguard::admin
