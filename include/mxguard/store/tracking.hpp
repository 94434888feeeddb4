// Decision events for `mxguard track`: the record stored per shard in the
// spool env, its versioned encoding, and the filter the console applies.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mxguard::store {

struct TrackEvent {
  int64_t time_ms = 0;       // wall clock, milliseconds since the epoch
  unsigned shard = 0;
  uint64_t session = 0;      // session id within the shard
  std::string client_ip;
  std::string helo;
  std::string sender;
  std::vector<std::string> recipients;
  std::string decision;      // e.g. relay_denied, accepted, delivered, released
  unsigned code = 0;         // SMTP code (0 when none applies)
  std::string reason;
  std::string message_id;    // our queue id, e.g. 6620f66a460af.s1
  std::string ref_id;        // reference id of a reject
};

inline constexpr uint8_t kTrackEventVersion = 1;

// Value layout: version byte, then fixed-width integers (little endian) and
// length-prefixed strings. Decoding rejects an unknown version or a truncated value.
std::string encode_event(const TrackEvent& e);
std::optional<TrackEvent> decode_event(std::string_view value);

// Primary key: 8-byte big-endian time, 8-byte big-endian sequence, so a cursor
// walks events in time order.
std::string event_key(int64_t time_ms, uint64_t seq);
std::optional<int64_t> event_key_time(std::string_view key);

// Index keys of an event: one per searchable field that is set ("s:" sender,
// "r:" each recipient, "i:" client, "m:" message id, "f:" reference id,
// "n:" session), lower-cased, then a NUL and the event key.
std::vector<std::string> event_index_keys(const TrackEvent& e, std::string_view key);
// The index prefix a filter can use (the most selective field set), "" for none.
std::string filter_index_prefix(const struct TrackFilter& f);

struct TrackFilter {
  std::string sender;     // case-insensitive exact address
  std::string recipient;  // matches any recipient
  std::string client_ip;
  std::string message_id;
  std::string ref_id;
  std::optional<uint64_t> session;            // one session of the shard searched
  std::optional<int64_t> since_ms, until_ms;  // inclusive bounds
  bool matches(const TrackEvent& e) const;
};

}  // namespace mxguard::store
