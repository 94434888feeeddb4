// The known recipients of `list`-mode domains, behind `mxguard recipient ...`
// and /api/v1/domains/{d}/recipients: list, add, remove and an all-or-nothing
// import, each checking permission and every address before it writes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/admin/domains.hpp"
#include "mxguard/admin/failure.hpp"

namespace mxguard::admin {

// Addresses as typed. With a domain, words without '@' are local parts of
// it and addresses must be in it; without one (the console's older
// spelling) each address names its own domain.
struct RecipientInput {
  std::string domain;
  std::vector<std::string> addresses;
};

struct RecipientChange {
  std::string address;  // local@domain, lower case as stored
  std::string domain;
  bool changed = false;  // false: already present (add) or was not present (remove)
};

struct RecipientList {
  std::string domain;
  std::vector<std::string> addresses;
};

// One address per line; blank lines and '#' comments are skipped.
struct RecipientImport {
  std::string domain;
  std::string source;  // where the text came from (a file name), for the audit entry
  size_t addresses = 0;
  size_t added = 0;  // new ones; the rest were already present
};

Outcome<RecipientList> list_recipients(const Actor& a, std::string_view domain);
Outcome<std::vector<RecipientChange>> add_recipients(const Actor& a, const RecipientInput& in);
Outcome<std::vector<RecipientChange>> remove_recipients(const Actor& a, const RecipientInput& in);
// Any bad, foreign or duplicate line refuses the whole text (usage, field
// "text"): the failure's `lines` name each one, and nothing is written.
Outcome<RecipientImport> import_recipients(const Actor& a, std::string_view domain, std::string_view text,
                                           std::string_view source);

// {"address","domain","kind":"mailbox"}, as `recipient list --json` prints each.
nlohmann::ordered_json recipient_json(std::string_view address, std::string_view domain);

}  // namespace mxguard::admin
