// Allow/block list entries and the RCPT-time policy answer built from the
// config env: which domain, whether the recipient exists, what the lists say.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/net.hpp"
#include "mxguard/core/result.hpp"

namespace mxguard::store {

struct Domain;

enum class ListAction : uint8_t { kAllow, kBlock };
enum class ListKind : uint8_t { kSender, kSenderDomain, kClientIp };

std::string_view to_string(ListAction a);
std::string_view to_string(ListKind k);
std::optional<ListAction> list_action_from_string(std::string_view s);
std::optional<ListKind> list_kind_from_string(std::string_view s);  // "sender", "sender-domain", "ip"

struct ListEntry {
  std::string scope;  // "" = global, else a domain (A-label)
  ListAction action = ListAction::kBlock;
  ListKind kind = ListKind::kSender;
  std::string value;  // lower-case address, domain, or canonical CIDR
  int64_t added_ms = 0;
};

// Checks and canonicalises an entry's value for its kind; the error says why.
// Besides plain values, the two wildcard forms operators type are accepted:
// sender "*@domain" (any sender at exactly that domain) and sender-domain
// "*.domain" (any subdomain of domain, not the domain itself: a plain
// sender-domain entry already covers the domain and its subdomains). Any
// other '*' is refused with a message that shows these forms.
Result<std::string> canonical_list_value(ListKind kind, std::string_view value);

// An entry as typed, with its kind: the wildcard forms are moved to the kind
// that holds them ("sender-domain *@d" is the sender entry "*@d", "sender
// *@*.d" and "sender *.d" are the sender-domain entry "*.d"), then
// canonicalised as above.
struct ListTarget {
  ListKind kind = ListKind::kSender;
  std::string value;
};
Result<ListTarget> canonical_list_entry(ListKind kind, std::string_view value);

// The stored values of `kind` that match a sender (kSender, kSenderDomain
// only): the address itself and "*@domain"; the domain, each parent domain
// and "*.parent" for each strict parent. `sender` and `sender_domain` are
// lower-case; the null sender matches nothing. The engine looks these keys up.
std::vector<std::string> sender_match_values(ListKind kind, std::string_view sender, std::string_view sender_domain);

// Whether a stored entry value of `kind` matches the sender (kSender,
// kSenderDomain) or the client address (kClientIp).
bool list_value_matches(ListKind kind, std::string_view value, std::string_view sender,
                        std::string_view sender_domain, const std::optional<IpAddress>& client);

// Key layout: scope \x1f action \x1f kind \x1f value, so one scope's entries of
// one action and kind are a contiguous range.
std::string list_key(std::string_view scope, ListAction a, ListKind k, std::string_view value);
std::string list_prefix(std::string_view scope, ListAction a, ListKind k);
std::string encode_list_entry(const ListEntry& e);
Result<ListEntry> decode_list_entry(std::string_view key, std::string_view value);

enum class ListVerdict : uint8_t { kNone, kAllow, kBlock };

struct PolicyQuery {
  std::string_view rcpt_domain;  // lower-case
  std::string_view rcpt_local;
  std::string_view sender;         // "" for the null sender
  std::string_view sender_domain;  // lower-case
  std::optional<IpAddress> client;
};

struct RcptPolicy {
  bool domain_found = false;
  uint8_t status = 0;        // DomainStatus
  bool list_mode = false;    // recipients = list
  bool callout_mode = false; // recipients = callout: ask the backend
  bool recipient_known = false;  // list mode: the address, or its base address, is listed
  // The local part cut at the domain's recipient delimiter ("bob" for
  // "bob+news"), empty when nothing was cut: what a callout asks the backend.
  std::string base_local;
  ListVerdict lists = ListVerdict::kNone;  // the domain's own lists, then global
};

// Subaddressing (RFC 5233 style): the local part up to the first of the
// `delimiters` characters, or nullopt when there is nothing to cut (no
// delimiter set, none in the local part, one at its very start, or a quoted
// local part, whose characters are not delimiters).
std::optional<std::string_view> base_local_part(std::string_view local, std::string_view delimiters);

// A domain's recipient_delimiter setting: empty (no subaddressing) or up to
// four distinct characters that may appear in an unquoted local part and are
// not letters or digits; the error says why not.
Status check_recipient_delimiter(std::string_view delimiters);

}  // namespace mxguard::store
