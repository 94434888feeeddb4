// Delivery status notifications (RFC 3464): the bounce we send to the
// envelope sender when a recipient fails or its queue lifetime expires.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mxguard::delivery {

struct DsnRecipient {
  std::string recipient;   // original forward-path
  std::string status;      // "5.1.1"; "4.4.7" for an expired message
  std::string diagnostic;  // "smtp; 550 5.1.1 no such user" or our reason
  std::string remote_mta;  // backend host, "" when none answered
};

struct DsnInput {
  std::string reporting_mta;     // our hostname
  std::string original_id;       // our queue id (X-MxGuard-Queue-ID / Original-Envelope-Id is not ours)
  std::string sender;            // the envelope sender the DSN goes to (never "")
  int64_t arrival_ms = 0;
  int64_t now_ms = 0;
  bool expired = false;          // queue lifetime ran out (Action: failed, Status 4.4.7)
  std::vector<DsnRecipient> recipients;
  std::string_view original;     // the stored message; only its header section is included
  std::string boundary;          // unique token for the MIME boundary (e.g. from the id)
};

// The complete DSN message (headers + body, CRLF), From MAILER-DAEMON@reporting_mta,
// To the sender, Auto-Submitted: auto-replied, multipart/report;
// report-type=delivery-status with a text part, message/delivery-status and
// text/rfc822-headers.
std::string build_dsn(const DsnInput& in);

}  // namespace mxguard::delivery
