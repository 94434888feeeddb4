// SMTP reply formatting (RFC 5321 4.2, RFC 3463 enhanced status codes).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mxguard::smtp {

// Appends "250 2.1.0 Ok\r\n". `enhanced` may be empty (e.g. for 220/221
// without one). Control characters in `text` are replaced by '?', so a reply
// can never carry a CR or LF from client data into a new line.
void append_reply(std::string& out, int code, std::string_view enhanced, std::string_view text);

// Appends a multiline reply: every line but the last uses "code-".
void append_multiline(std::string& out, int code, const std::vector<std::string>& lines);

}  // namespace mxguard::smtp
