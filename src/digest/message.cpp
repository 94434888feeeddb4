// The digest mail: headers, a text/plain and a text/html part (both UTF-8,
// base64 so no line of mail text can break the MIME structure), and three
// signed links per quarantined message. The HTML has no script, no style
// sheet and no remote reference: every value in it is escaped text.
#include "mxguard/digest/message.hpp"

#include <sodium.h>

#include <ctime>

#include <fmt/format.h>

#include "mxguard/mime/walker.hpp"

namespace mxguard::digest {

namespace {

constexpr size_t kMaxSubject = 200;
constexpr size_t kMaxSender = 254;
constexpr Action kActions[] = {Action::kRelease, Action::kReleaseAllow, Action::kDelete};

std::string_view action_label(Action a) {
  switch (a) {
    case Action::kRelease: return "Release";
    case Action::kReleaseAllow: return "Release and allow sender";
    case Action::kDelete: return "Delete";
  }
  return "?";
}

std::tm utc(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) {
    std::time_t epoch = 0;
    gmtime_r(&epoch, &tm);
  }
  return tm;
}

// RFC 5322 date-time in UTC.
std::string mail_date(int64_t ms) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm = utc(ms);
  return fmt::format("{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} +0000", kDays[tm.tm_wday], tm.tm_mday,
                     kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// What a reader sees as the message's date: "2026-12-07 23:30 UTC".
std::string shown_date(int64_t ms) {
  std::tm tm = utc(ms);
  return fmt::format("{:04d}-{:02d}-{:02d} {:02d}:{:02d} UTC", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min);
}

std::string base64_lines(std::string_view bytes) {
  const int variant = sodium_base64_VARIANT_ORIGINAL;
  std::string flat(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(flat.data(), flat.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    variant);
  flat.resize(std::char_traits<char>::length(flat.c_str()));
  std::string out;
  for (size_t i = 0; i < flat.size(); i += 76) {
    out.append(flat, i, 76);
    out += "\r\n";
  }
  return out;
}

// A header value: as is when it is printable ASCII, else one RFC 2047
// B-encoded word per chunk of whole UTF-8 characters.
std::string header_text(std::string_view utf8) {
  bool ascii = true;
  for (unsigned char c : utf8) ascii = ascii && c >= 0x20 && c < 0x7f;
  if (ascii) return std::string(utf8);
  std::string out;
  size_t i = 0;
  while (i < utf8.size()) {
    size_t end = std::min(utf8.size(), i + 45);
    while (end < utf8.size() && (static_cast<unsigned char>(utf8[end]) & 0xc0) == 0x80) --end;
    std::string b = base64_lines(utf8.substr(i, end - i));
    std::erase(b, '\r');
    std::erase(b, '\n');
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + b + "?=";
    i = end;
  }
  return out;
}

std::string shown_sender(const Entry& e) {
  return e.sender.empty() ? std::string("(no sender)") : display_text(e.sender, kMaxSender);
}

std::string shown_subject(const Entry& e) {
  std::string s = display_text(mime::decode_header_words(e.subject), kMaxSubject);
  return s.empty() ? std::string("(no subject)") : s;
}

struct Links {
  std::string url[3];
};

std::string text_part(const DigestRequest& r, const std::vector<Links>& links) {
  std::string t = fmt::format("Quarantine digest for {}\n\n", display_text(r.recipient, kMaxSender));
  t += fmt::format("{} new message{} held in quarantine since your last digest. Nothing was delivered;\n"
                   "each link opens a page where you confirm the action.\n",
                   r.entries.size(), r.entries.size() == 1 ? " was" : "s were");
  for (size_t i = 0; i < r.entries.size(); ++i) {
    const Entry& e = r.entries[i];
    t += fmt::format("\n{}. {}\n   From:  {}\n   Date:  {}\n   Score: {:.1f}\n", i + 1, shown_subject(e),
                     shown_sender(e), shown_date(e.received_ms), e.score);
    if (e.held_for.size() > 1 || (e.held_for.size() == 1 && e.held_for[0] != r.recipient)) {
      std::string to;
      for (const auto& a : e.held_for) to += (to.empty() ? "" : ", ") + display_text(a, kMaxSender);
      t += fmt::format("   To:    {}\n", to);
    }
    for (size_t a = 0; a < 3; ++a) t += fmt::format("   {}: {}\n", action_label(kActions[a]), links[i].url[a]);
  }
  t += "\nThe links work until the message leaves the quarantine at the end of its retention.\n";
  return t;
}

std::string html_part(const DigestRequest& r, const std::vector<Links>& links) {
  std::string h =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
      "<title>Quarantine digest</title></head>\n<body>\n";
  h += fmt::format("<h1>Quarantine digest for {}</h1>\n", html_escape(display_text(r.recipient, kMaxSender)));
  h += fmt::format("<p>{} new message{} held in quarantine since your last digest. Each link opens a page "
                   "where you confirm the action.</p>\n",
                   r.entries.size(), r.entries.size() == 1 ? " was" : "s were");
  h += "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n"
       "<tr><th>From</th><th>Subject</th><th>Date</th><th>Score</th><th>Actions</th></tr>\n";
  for (size_t i = 0; i < r.entries.size(); ++i) {
    const Entry& e = r.entries[i];
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1f}</td><td>", html_escape(shown_sender(e)),
                     html_escape(shown_subject(e)), html_escape(shown_date(e.received_ms)), e.score);
    for (size_t a = 0; a < 3; ++a)
      h += fmt::format("{}<a href=\"{}\">{}</a>", a == 0 ? "" : " | ", html_escape(links[i].url[a]),
                       html_escape(action_label(kActions[a])));
    h += "</td></tr>\n";
  }
  h += "</table>\n</body></html>\n";
  return h;
}

std::string crlf(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 20);
  for (char c : s) {
    if (c == '\n') out += "\r\n";
    else out.push_back(c);
  }
  return out;
}

}  // namespace

std::string display_text(std::string_view s, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool valid = len > 0 && i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) valid = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (valid && len == 2) valid = c >= 0xc2;  // overlong
    if (valid && len == 3) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      valid = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);  // overlong, surrogates
    }
    if (valid && len == 4) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      valid = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90) && c <= 0xf4;
    }
    std::string_view piece;
    if (!valid) {
      piece = "\xef\xbf\xbd";
      len = 1;
    } else if (len == 1 && (c < 0x20 || c == 0x7f)) {
      piece = " ";
    } else if (len == 2 && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0) {
      piece = " ";  // C1 controls
    } else {
      piece = s.substr(i, len);
    }
    if (out.size() + piece.size() > max_bytes) {
      out += "...";
      break;
    }
    out += piece;
    i += len;
  }
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string link_url(std::string_view public_url, Action action, std::string_view token) {
  std::string base(public_url);
  while (!base.empty() && base.back() == '/') base.pop_back();
  return fmt::format("{}/digest/{}/{}", base, to_string(action), token);
}

std::string digest_subject(std::string_view recipient, size_t messages) {
  return fmt::format("Quarantine digest for {}: {} new message{}", display_text(recipient, kMaxSender), messages,
                     messages == 1 ? "" : "s");
}

Result<DigestMail> build_digest(const store::DigestKey& key, const DigestRequest& r) {
  if (r.entries.empty()) return Error{"a digest needs at least one message"};
  if (r.public_url.empty()) return Error{"web.public_url is not set: digest links need it"};
  for (std::string_view a : {std::string_view(r.recipient), std::string_view(r.from), std::string_view(r.hostname)})
    if (a.empty() || a.find_first_of("\r\n<>\"") != std::string_view::npos)
      return Error{fmt::format("'{}' cannot be written into a mail header", display_text(a, 254))};
  std::vector<Links> links(r.entries.size());
  for (size_t i = 0; i < r.entries.size(); ++i) {
    for (size_t a = 0; a < 3; ++a) {
      Claims c{r.recipient, r.entries[i].id, kActions[a], r.entries[i].expires_ms, {}};
      auto token = sign(key, c);
      if (!token) return Error{fmt::format("message {}: {}", r.entries[i].id, token.error())};
      links[i].url[a] = link_url(r.public_url, kActions[a], *token);
    }
  }
  DigestMail m;
  m.subject = digest_subject(r.recipient, r.entries.size());
  m.message_id = fmt::format("<{}.digest@{}>", r.unique, r.hostname);
  const std::string boundary = fmt::format("=_mxguard-digest-{}", r.unique);
  std::string& d = m.data;
  d += fmt::format("Date: {}\r\n", mail_date(r.now_ms));
  d += fmt::format("From: MxGuard quarantine <{}>\r\n", r.from);
  d += fmt::format("To: <{}>\r\n", r.recipient);
  d += fmt::format("Subject: {}\r\n", header_text(m.subject));
  d += fmt::format("Message-ID: {}\r\n", m.message_id);
  d += "MIME-Version: 1.0\r\n";
  d += "Auto-Submitted: auto-generated\r\n";
  d += "X-Auto-Response-Suppress: All\r\n";
  d += fmt::format("Content-Type: multipart/alternative; boundary=\"{}\"\r\n\r\n", boundary);
  d += "This is a MIME message: a text and an HTML version of your quarantine digest.\r\n";
  d += fmt::format("\r\n--{}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
                   boundary);
  d += base64_lines(crlf(text_part(r, links)));
  d += fmt::format("\r\n--{}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
                   boundary);
  d += base64_lines(crlf(html_part(r, links)));
  d += fmt::format("\r\n--{}--\r\n", boundary);
  return m;
}

}  // namespace mxguard::digest
