// How the quarantine is seen by every front end: which held recipients a
// principal may see (tenant isolation), the JSON of a record, the safe
// preview of a message, and the time arguments of the quarantine commands.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mxguard/admin/access.hpp"
#include "mxguard/core/result.hpp"
#include "mxguard/mime/walker.hpp"
#include "mxguard/store/config_store.hpp"
#include "mxguard/store/quarantine.hpp"

namespace mxguard::admin {

// The held recipients a principal may see and act on: operators all;
// customer-admins those in their customer's domains; postmasters those in
// their domain; users their own address and shadow addresses (a shadow in
// another customer's domain is ignored: isolation is absolute; the rule is
// digest::user_addresses); a digest link's principal its link_addresses.
class QuarantineScope {
 public:
  static Result<QuarantineScope> of(const store::ConfigStore& store, const Principal& p);

  bool all() const { return all_; }
  bool sees(std::string_view address) const;
  // Whether any address this scope sees can be in `domain` (lower case).
  bool covers_domain(std::string_view domain) const;
  std::vector<std::string> visible(const std::vector<std::string>& held) const;
  // Lower case; users have addresses, the other roles domains.
  const std::set<std::string>& domains() const { return domains_; }
  const std::set<std::string>& addresses() const { return addresses_; }

 private:
  bool all_ = false;
  std::set<std::string> domains_;
  std::set<std::string> addresses_;
};

// {"id","shard","sender","recipients","size","subject","message_id","received",
//  "score","action","reasons":[{"rule","score"}],"client_ip","helo"};
// `recipients` are the held ones the viewer may see.
nlohmann::ordered_json quarantine_json(const store::QuarantineRecord& r, const std::vector<std::string>& recipients);

// Envelope reasons "RULE=score" as [{"rule","score"}].
nlohmann::ordered_json reasons_json(const std::vector<std::string>& reasons);

// What a safe preview shows: the top-level header fields (decoded), the text
// (HTML reduced to its visible text), and the attachments by name and type,
// never opened. Nothing refers to remote content.
struct Preview {
  struct Attachment {
    std::string filename;
    std::string content_type;
    std::string detected_type;
    uint64_t size = 0;
    std::vector<std::string> members;  // archive member names
  };
  std::vector<std::pair<std::string, std::string>> headers;
  std::string text;
  bool text_from_html = false;
  bool truncated = false;  // text, headers or attachments were cut at the preview's bounds
  std::vector<Attachment> attachments;
  std::vector<std::string> limits;  // MIME walker bounds that were hit
};

Preview make_preview(std::string_view message, const mime::Limits& limits);
nlohmann::ordered_json preview_json(const Preview& p);

// Text from mail made safe for a terminal: line breaks and tabs are kept,
// carriage returns dropped, other control characters (C0, DEL, C1) escaped.
std::string terminal_safe(std::string_view utf8);

// A time argument: "2026-05-01", "2026-05-01T12:00:00Z" (UTC unless an
// offset is given), "@<unix seconds>", "now", a duration back from now
// ("90m", "2h", "7d") or forward from it ("+31d").
Result<int64_t> parse_time_arg(std::string_view s, int64_t now_ms);

}  // namespace mxguard::admin
