// The pure half of DMARC (RFC 7489): parsing a policy record, identifier
// alignment and the verdict from SPF/DKIM results. No I/O: the lookups are
// in src/auth/dmarc.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/auth/checks.hpp"
#include "mxguard/core/result.hpp"

namespace mxguard::auth::dmarc {

struct Record {
  DmarcPolicy p = DmarcPolicy::kNone;
  std::optional<DmarcPolicy> sp;
  unsigned pct = 100;
  bool adkim_strict = false;
  bool aspf_strict = false;
  // p= (or sp=) was missing or invalid but rua= names a valid URI, so the
  // record stands as p=none (RFC 7489 6.6.3 step 6).
  bool p_defaulted = false;
};

// True when a TXT string is a DMARC record: it starts with the tag "v",
// value exactly "DMARC1" (RFC 7489 6.6.3 step 4; whitespace around '=' allowed).
bool is_dmarc_record(std::string_view txt);

// Parses a record (RFC 7489 6.3, 6.4). Unknown tags are ignored, and so are
// invalid values of pct, adkim and aspf (their defaults apply). A missing or
// invalid p=, or an invalid sp=, is an error unless rua= holds a valid URI,
// in which case the record is read as p=none. An error means "no usable
// policy": the evaluator reports permerror and applies nothing.
Result<Record> parse_record(std::string_view text);

// What the TXT strings at one _dmarc name come to (RFC 7489 6.6.3 steps 2,
// 5 and 6): strings that are no DMARC record are dropped; none left means
// "look further" (the organisational domain); several mean no policy at
// all (result none, no fallback); one that does not parse is unusable
// (reported as permerror).
struct Discovery {
  enum class Kind : uint8_t { kNoRecord, kSeveral, kUnusable, kRecord } kind = Kind::kNoRecord;
  Record record;      // kRecord
  std::string error;  // kUnusable: why
};
Discovery discover(const std::vector<std::string>& txt);

// Identifier alignment (RFC 7489 3.1): strict needs the same name, relaxed the
// same organisational domain. Case and a trailing dot do not matter.
bool aligned(std::string_view authenticated, std::string_view from_domain, bool strict);

// Whether a failing message falls in the pct= sample. Deterministic: a hash
// of `key` (the message id, say) against pct, so a retried message gets the
// same decision; an empty key always falls in it.
bool in_sample(std::string_view key, unsigned pct);

// The verdict, once a record is in hand. `found_at_org` says the record came
// from the organisational domain (the From domain had none), so sp= applies
// when the From domain is below it.
DmarcOutcome evaluate(const Record& record, const DmarcRequest& request, std::string_view from_domain,
                      std::string_view org_domain, bool found_at_org);

}  // namespace mxguard::auth::dmarc
