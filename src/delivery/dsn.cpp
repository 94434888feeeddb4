// Builds the bounce: an RFC 6522 multipart/report holding a human text, the
// RFC 3464 delivery-status fields and the original message's header section.
#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "internal.hpp"
#include "mxguard/delivery/dsn.hpp"

namespace mxguard::delivery {

namespace {

constexpr size_t kMaxHeaderSection = 64 * 1024;
constexpr size_t kMaxLine = 998;      // RFC 5322 2.1.1, without CRLF
constexpr size_t kFoldAt = 78;        // the line length RFC 5322 asks for
constexpr size_t kMaxWord = 900;      // a longer unbroken token is split
constexpr size_t kMaxValue = 4096;    // a diagnostic longer than this is cut
constexpr size_t kMaxBoundary = 60;   // RFC 2046 allows 70; room for a suffix

// RFC 5322 3.3 date-time in UTC.
std::string format_date(int64_t ms) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const time_t t = static_cast<time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  struct tm tm {};
  if (gmtime_r(&t, &tm) == nullptr) {
    const time_t epoch = 0;
    gmtime_r(&epoch, &tm);
  }
  return fmt::format("{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} +0000", kDays[tm.tm_wday % 7],
                     tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
}

bool has_non_ascii(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

// A value cut to kMaxValue with a marker, so a chatty server cannot bloat the bounce.
std::string capped(std::string_view s) {
  std::string v = one_line(s);
  if (v.size() > kMaxValue) {
    v.resize(kMaxValue);
    v += " [...]";
  }
  return v;
}

// Appends `first` followed by the words of `value`, folded before kFoldAt
// where a space allows and hard-split where a single word is too long, so no
// line exceeds kMaxLine. Continuation lines start with `indent`.
void append_wrapped(std::string& out, std::string_view first, std::string_view value, std::string_view indent) {
  std::string line(first);
  bool line_has_word = false;
  size_t pos = 0;
  while (pos < value.size()) {
    const size_t sp = value.find(' ', pos);
    std::string_view word = value.substr(pos, sp == std::string_view::npos ? std::string_view::npos : sp - pos);
    pos = sp == std::string_view::npos ? value.size() : sp + 1;
    while (!word.empty()) {
      const std::string_view piece = word.substr(0, kMaxWord);
      word.remove_prefix(piece.size());
      if (line_has_word && line.size() + 1 + piece.size() > kFoldAt) {
        out += line;
        out += "\r\n";
        line.assign(indent);
        line_has_word = false;
      }
      if (line_has_word || (!line.empty() && line.back() != ' ')) line.push_back(' ');
      line.append(piece);
      line_has_word = true;
    }
  }
  out += line;
  out += "\r\n";
}

// A header or delivery-status field; folded lines start with a space (RFC 5322 2.2.3).
void append_field(std::string& out, std::string_view name, std::string_view value) {
  append_wrapped(out, fmt::format("{}:", name), capped(value), " ");
}

// The original's header section (up to the first empty line), CRLF, capped
// at kMaxHeaderSection on a line boundary, overlong lines truncated.
std::string header_section(std::string_view message) {
  std::string out;
  size_t pos = 0;
  while (pos < message.size()) {
    const size_t lf = message.find('\n', pos);
    std::string_view line = message.substr(pos, lf == std::string_view::npos ? std::string_view::npos : lf - pos);
    pos = lf == std::string_view::npos ? message.size() : lf + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    line = line.substr(0, kMaxLine);
    if (out.size() + line.size() + 2 > kMaxHeaderSection) break;
    const size_t start = out.size();
    out.append(line);
    // A stray CR or NUL would break the part's line structure.
    for (size_t i = start; i < out.size(); ++i)
      if (out[i] == '\r' || out[i] == '\0') out[i] = ' ';
    out.append("\r\n");
  }
  return out;
}

// The caller's token, restricted to RFC 2046 bchars, made unique against the body.
std::string choose_boundary(std::string_view wanted, const std::string& body) {
  std::string b;
  for (char c : wanted) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("'()+_,-./:=?").find(c) != std::string_view::npos;
    b.push_back(ok ? c : '_');
    if (b.size() == kMaxBoundary) break;
  }
  if (b.empty()) b = "mxguard-dsn";
  const std::string base = b;
  for (int n = 1; body.find("--" + b) != std::string::npos; ++n) b = fmt::format("{}={}", base, n);
  return b;
}

// "5.1.1" and the like; a failed action needs class 4 or 5.
bool valid_failure_status(std::string_view s) {
  if (s.size() < 5 || (s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
  size_t pos = 2;
  for (int part = 0; part < 2; ++part) {
    size_t digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      ++pos;
      ++digits;
    }
    if (digits == 0 || digits > 3) return false;
    if (part == 0) {
      if (pos >= s.size() || s[pos] != '.') return false;
      ++pos;
    }
  }
  return pos == s.size();
}

// Diagnostic-Code needs a type; our own reasons are not SMTP replies.
std::string diagnostic_code(std::string_view diagnostic) {
  const std::string d = one_line(diagnostic);
  const size_t semi = d.find(';');
  const bool typed = semi != std::string::npos && semi > 0 &&
                     std::all_of(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(semi), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
                     });
  return typed ? d : "X-MxGuard; " + d;
}

// Text for humans; the parts after it are for machines.
std::string explanation(const DsnInput& in, const std::string& host) {
  std::string text;
  append_wrapped(text, "", fmt::format("This is the mail system at {}.", host), "");
  text += "\r\n";
  if (in.expired) {
    append_wrapped(text, "",
                   "Your message could not be delivered within the queue lifetime to the recipients below, and "
                   "no further delivery attempts will be made.",
                   "");
  } else {
    append_wrapped(text, "", "Your message could not be delivered to the recipients below.", "");
  }
  text += "\r\n";
  for (const DsnRecipient& r : in.recipients) {
    append_wrapped(text, "", fmt::format("<{}>:", one_line(r.recipient)), "");
    append_wrapped(text, "   ", capped(r.diagnostic.empty() ? r.status : r.diagnostic), "   ");
    text += "\r\n";
  }
  if (!in.original_id.empty()) append_wrapped(text, "", "Queue ID: " + one_line(in.original_id), "");
  append_wrapped(text, "", "The header section of your message is attached.", "");
  return text;
}

std::string delivery_status(const DsnInput& in, const std::string& host, bool utf8) {
  std::string ds;
  append_field(ds, "Reporting-MTA", "dns; " + host);
  if (!in.original_id.empty()) append_field(ds, "X-MxGuard-Queue-ID", in.original_id);
  if (in.arrival_ms > 0) append_field(ds, "Arrival-Date", format_date(in.arrival_ms));
  for (const DsnRecipient& r : in.recipients) {
    ds += "\r\n";
    append_field(ds, "Final-Recipient", fmt::format("{}; {}", utf8 ? "utf-8" : "rfc822", one_line(r.recipient)));
    append_field(ds, "Action", "failed");
    std::string status = in.expired ? "4.4.7" : r.status;
    if (!valid_failure_status(status)) status = "5.0.0";
    append_field(ds, "Status", status);
    if (!r.remote_mta.empty()) append_field(ds, "Remote-MTA", "dns; " + one_line(r.remote_mta));
    if (!r.diagnostic.empty()) append_field(ds, "Diagnostic-Code", diagnostic_code(r.diagnostic));
    append_field(ds, "Last-Attempt-Date", format_date(in.now_ms));
  }
  return ds;
}

}  // namespace

std::string build_dsn(const DsnInput& in) {
  std::string host = one_line(in.reporting_mta);
  std::erase_if(host, [](char c) { return c == ' ' || c == '<' || c == '>'; });
  // RFC 6533: non-ASCII addresses need the "global" report types.
  const bool utf8 = std::any_of(in.recipients.begin(), in.recipients.end(),
                                [](const DsnRecipient& r) { return has_non_ascii(r.recipient); });
  const std::string headers = header_section(in.original);
  const bool utf8_headers = has_non_ascii(headers);

  std::string parts[3];
  parts[0] = explanation(in, host);
  parts[1] = delivery_status(in, host, utf8);
  parts[2] = headers;
  const std::string boundary = choose_boundary(in.boundary, parts[0] + parts[1] + parts[2]);

  std::string out;
  append_field(out, "From", fmt::format("Mail Delivery System <MAILER-DAEMON@{}>", host));
  append_field(out, "To", fmt::format("<{}>", one_line(in.sender)));
  append_field(out, "Subject", "Undelivered Mail Returned to Sender");
  append_field(out, "Date", format_date(in.now_ms));
  out += fmt::format("Message-ID: <{}@{}>\r\n", boundary, host);
  out += "MIME-Version: 1.0\r\n";
  out += "Auto-Submitted: auto-replied\r\n";
  out += fmt::format("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{}\"\r\n",
                     boundary);
  out += "\r\n";
  out += "This is a MIME-encapsulated message.\r\n\r\n";

  out += fmt::format("--{}\r\n", boundary);
  out += "Content-Description: Notification\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += "Content-Transfer-Encoding: 8bit\r\n\r\n";
  out += parts[0];
  out += "\r\n";

  out += fmt::format("--{}\r\n", boundary);
  out += "Content-Description: Delivery report\r\n";
  out += utf8 ? "Content-Type: message/global-delivery-status\r\n" : "Content-Type: message/delivery-status\r\n";
  if (utf8) out += "Content-Transfer-Encoding: 8bit\r\n";
  out += "\r\n";
  out += parts[1];
  out += "\r\n";

  out += fmt::format("--{}\r\n", boundary);
  out += "Content-Description: Undelivered Message Headers\r\n";
  out += utf8_headers ? "Content-Type: message/global-headers\r\nContent-Transfer-Encoding: 8bit\r\n"
                      : "Content-Type: text/rfc822-headers\r\n";
  out += "\r\n";
  out += parts[2];
  out += "\r\n";
  out += fmt::format("--{}--\r\n", boundary);
  return out;
}

}  // namespace mxguard::delivery
