// The allow and block lists behind `mxguard list allow|block ...` and
// /api/v1/domains/{d}/lists: one domain's lists (its customer-admins and
// postmaster) or the global ones (operators), shown, added to, removed from.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/admin/domains.hpp"
#include "mxguard/admin/failure.hpp"
#include "mxguard/store/policy.hpp"

namespace mxguard::admin {

// "KIND is sender (...), sender-domain (...) or ip (...)": the help's wording.
extern const std::string_view kListKinds;

// Strings as typed. `list` is "allow" or "block"; an empty `domain` is the
// global list.
struct ListEntryInput {
  std::string list;
  std::string domain;
  std::string kind;
  std::string value;
};

struct ListChange {
  store::ListEntry entry;  // canonical value; `added_ms` is now
  bool changed = false;    // add: false when it was already there (remove refuses that)
};

struct ListShown {
  std::string scope;  // "" for the global list
  store::ListAction action = store::ListAction::kBlock;
  std::vector<store::ListEntry> entries;
};

// The entries of one list (`list` "allow" or "block"; empty domain: global).
Outcome<ListShown> show_list(const Actor& a, std::string_view list, std::string_view domain);
Outcome<ListChange> add_list_entry(const Actor& a, const ListEntryInput& in);
// An entry that is not on the list is refused (not_found), nothing written.
Outcome<ListChange> remove_list_entry(const Actor& a, const ListEntryInput& in);

// {"list","scope","kind","value","added"}: `list ... show --json` per entry.
nlohmann::ordered_json list_entry_json(const store::ListEntry& e);

}  // namespace mxguard::admin
