// The live feed behind `mxguard feed` and GET /api/v1/feed: the verdict
// entries of every shard's feed ring, filtered and scoped to what the
// principal may see (QuarantineScope), each with what became of the message.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/admin/domains.hpp"
#include "mxguard/admin/failure.hpp"

namespace mxguard::admin {

// The feed's filters, as typed. `text` matches (case-insensitively) the id,
// sender, subject, client and the recipients the principal sees.
struct FeedFilter {
  std::string domain, action, text, since;
};

// The verdicts a feed filter's `action` accepts.
inline constexpr std::string_view kFeedActions[] = {"deliver", "quarantine", "reject", "greylist"};

// Where a reader of the feed stopped: the last sequence read per shard. The
// text form "SHARD:SEQ,SHARD:SEQ" is what the API hands out and takes back.
struct FeedCursor {
  std::map<unsigned, uint64_t> after;
  std::string to_string() const;
};
// usage (field `field`) when it is not that form.
Outcome<FeedCursor> parse_feed_cursor(std::string_view text, std::string field = "after");

struct FeedEntry {
  int64_t time_ms = 0;
  unsigned shard = 0;
  uint64_t seq = 0;
  // The engine's entry; for non-operators `recipients` holds only the ones they see.
  nlohmann::ordered_json entry;
  // "delivered", "bounced", "deferred", "held", "released", "delivered+held",
  // "queued", "unknown", or "" for a refused message.
  std::string delivery;
};

struct FeedPage {
  std::vector<FeedEntry> entries;  // oldest first, at most `limit` (the newest)
  FeedCursor cursor;               // pass it back to get only newer entries
};

// The entries after `from` matching `f` that the principal may see. Bad
// filter values are usage with the field named; a domain that does not
// exist or belongs to another tenant is not_found "no such domain: D".
Outcome<FeedPage> read_feed(const Actor& a, const FeedFilter& f, const FeedCursor& from, size_t limit);

// The entry with its "delivery" (`feed --json`, the API).
nlohmann::ordered_json feed_entry_json(const FeedEntry& e);

}  // namespace mxguard::admin
