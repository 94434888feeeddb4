// The digest mail for one recipient: what was quarantined for them (and their
// shadow addresses) since their last digest, as multipart/alternative with a
// text and an HTML part, each message with its signed action links.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/result.hpp"
#include "mxguard/digest/token.hpp"
#include "mxguard/store/config_store.hpp"

namespace mxguard::digest {

// One quarantined message as the digest lists it.
struct Entry {
  std::string id;                     // spool id
  std::string sender;                 // envelope sender ("" = null sender)
  std::string subject;                // as received (encoded-words are decoded for display)
  int64_t received_ms = 0;
  double score = 0;
  int64_t expires_ms = 0;             // retention end: the links' expiry
  std::vector<std::string> held_for;  // which of the recipient's addresses it is held for
};

struct DigestRequest {
  std::string recipient;   // the owner address the digest goes to
  std::string from;        // the domain's digest_from, or postmaster@domain
  std::string hostname;    // right-hand side of the Message-ID
  std::string public_url;  // web.public_url: links are <public_url>/digest/<action>/<token>
  std::string unique;      // left-hand side of the Message-ID and the MIME boundary's seed
  int64_t now_ms = 0;
  std::vector<Entry> entries;
};

struct DigestMail {
  std::string data;        // the whole message, CRLF line ends
  std::string subject;
  std::string message_id;  // with angle brackets
};

// The link a digest carries for `token`.
std::string link_url(std::string_view public_url, Action action, std::string_view token);

// Builds the mail, signing one token per entry and action with `key`.
Result<DigestMail> build_digest(const store::DigestKey& key, const DigestRequest& r);

// "Quarantine digest for bob@example.com: 3 new messages"
std::string digest_subject(std::string_view recipient, size_t messages);

// Text from mail made safe to show: valid UTF-8 (other bytes become U+FFFD),
// control characters and line breaks as spaces, at most `max_bytes`.
std::string display_text(std::string_view s, size_t max_bytes);
// &, <, >, " and ' as HTML character references.
std::string html_escape(std::string_view s);

}  // namespace mxguard::digest
