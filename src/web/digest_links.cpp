// /digest/<action>/<token>: the confirm page (GET), the action (POST) and a
// plain page for every reason a link does nothing. The checks and the
// action are admin::inspect_digest_link / follow_digest_link; this file
// only turns their results into HTML.
#include "digest_links.hpp"

#include <ctime>
#include <mutex>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "domains_api.hpp"
#include "mxguard/admin/digest_links.hpp"
#include "mxguard/admin/text.hpp"
#include "mxguard/core/log.hpp"
#include "mxguard/digest/message.hpp"

namespace mxguard::web {

namespace {

constexpr std::string_view kPrefix = "/digest/";

// Text from mail or the store, escaped for HTML (and made printable).
std::string h(std::string_view s, size_t max = 998) { return digest::html_escape(digest::display_text(s, max)); }

std::string when(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// One page: the site's look, no script, a heading the keyboard lands on.
Response page(unsigned status, std::string_view state, std::string_view title, const std::string& body) {
  Response r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  // Under "no-referrer" a browser sends "Origin: null" with a form's POST,
  // which the Origin check refuses; "same-origin" keeps the real Origin and
  // still sends the URL (and its token) nowhere else.
  r.headers.emplace_back("Referrer-Policy", "same-origin");
  // Plus "form-action 'self'": the confirm form posts only here.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; script-src 'none'; object-src 'none'; frame-ancestors 'none'; "
                         "base-uri 'none'; form-action 'self'");
  r.body = fmt::format(
      "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<meta name=\"robots\" content=\"noindex\">\n"
      "<title>{} · MxGuard</title>\n<link rel=\"stylesheet\" href=\"/site.css\">\n</head>\n"
      "<body class=\"login link-page\">\n<main class=\"card link-card\" data-state=\"{}\">\n"
      "<p class=\"brand-line\">MxGuard quarantine</p>\n<h1 id=\"title\">{}</h1>\n{}</main>\n</body>\n</html>\n",
      h(title), state, h(title), body);
  return r;
}

std::string summary(const admin::DigestLink& l) {
  const store::Envelope& e = l.held.record.envelope;
  return fmt::format(
      "<dl class=\"link-summary\">\n"
      "<dt>From</dt><dd>{}</dd>\n<dt>Subject</dt><dd>{}</dd>\n<dt>Received</dt><dd>{}</dd>\n"
      "<dt>Score</dt><dd>{:.1f}</dd>\n<dt>For</dt><dd>{}</dd>\n</dl>\n",
      e.sender.empty() ? "(no sender)" : h(e.sender), e.subject.empty() ? "(no subject)" : h(e.subject),
      when(e.received_ms), e.score, h(join(l.held.visible)));
}

struct Wording {
  std::string_view title, button, button_class, done_title;
};

Wording wording(digest::Action a) {
  switch (a) {
    case digest::Action::kRelease: return {"Release this message?", "Release message", "", "Message released"};
    case digest::Action::kReleaseAllow:
      return {"Release and allow this sender?", "Release and allow sender", "", "Message released"};
    case digest::Action::kDelete: return {"Delete this message?", "Delete message", "danger", "Message deleted"};
  }
  return {"?", "?", "", "?"};
}

std::string_view problem_title(admin::LinkProblem p) {
  switch (p) {
    case admin::LinkProblem::kInvalid:
    case admin::LinkProblem::kForged:
    case admin::LinkProblem::kUnknownKey:
    case admin::LinkProblem::kWrongAction: return "This link is not valid";
    case admin::LinkProblem::kExpired: return "This link has expired";
    case admin::LinkProblem::kGone: return "Message no longer in quarantine";
    case admin::LinkProblem::kUsed: return "This link was already used";
    case admin::LinkProblem::kNotPermitted: return "Not possible from a digest link";
    case admin::LinkProblem::kUnavailable: return "Please try again later";
  }
  return "This link does not work";
}

Response refused(const admin::LinkRefusal& r) {
  return page(admin::category_info(r.failure.category).http_status, admin::to_string(r.problem),
              problem_title(r.problem), fmt::format("<p class=\"link-message\">{}</p>\n", h(r.failure.message, 2000)));
}

Response confirm(const admin::DigestLink& l, const std::string& path) {
  Wording w = wording(l.claims.action);
  std::string body = summary(l);
  body += fmt::format(
      "<form method=\"post\" action=\"{}\">\n<button type=\"submit\"{}>{}</button>\n</form>\n"
      "<p class=\"hint center\">Nothing happens until you press the button.</p>\n",
      h(path, 4096), w.button_class.empty() ? "" : fmt::format(" class=\"{}\"", w.button_class), w.button);
  return page(200, "confirm", w.title, body);
}

Response done(const admin::LinkDone& d) {
  Wording w = wording(d.link.claims.action);
  std::string said;
  if (d.released)
    said = fmt::format("It is on its way to {} and will arrive like any other mail. The spam filter learned from it.",
                       h(join(d.released->recipients)));
  else if (d.deleted)
    said = fmt::format("It was removed from the quarantine of {}.", h(join(d.deleted->recipients)));
  return page(200, "done", w.done_title, summary(d.link) + fmt::format("<p class=\"link-message\">{}</p>\n", said));
}

}  // namespace

std::optional<Response> DigestLinks::handle(const Request& req, bool same_origin) {
  if (!req.path.starts_with(kPrefix)) return std::nullopt;
  std::string_view rest = std::string_view(req.path).substr(kPrefix.size());
  size_t slash = rest.find('/');
  std::string action(rest.substr(0, slash));
  std::string token(slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1));
  const bool post = req.method == "POST";
  if (!post && req.method != "GET" && req.method != "HEAD") {
    Response r = page(405, "method", "This link does not work", "<p class=\"link-message\">Open the link from your digest.</p>\n");
    r.headers.emplace_back("Allow", "GET, POST");
    return r;
  }
  if (post && !same_origin) {
    log::info("web.digest_link", "method=POST action={} result=bad_origin client={}", log::q(action), req.client);
    return page(403, "bad_origin", "This link does not work",
                "<p class=\"link-message\">The confirmation did not come from this page. Open the link from your "
                "digest and press the button there. Nothing was changed.</p>\n");
  }
  const int64_t now = admin::now_ms();
  std::lock_guard lock(operations_mutex());
  if (!post) {
    auto seen = admin::inspect_digest_link(cfg_, store_, action, token, now);
    if (auto* r = std::get_if<admin::LinkRefusal>(&seen)) return refused(*r);
    return confirm(std::get<admin::DigestLink>(seen), req.path);
  }
  auto acted = admin::follow_digest_link(cfg_, store_, action, token, now);
  if (auto* r = std::get_if<admin::LinkRefusal>(&acted)) {
    log::info("web.digest_link", "method=POST action={} result={} client={}", log::q(action), admin::to_string(r->problem),
              req.client);
    return refused(*r);
  }
  const admin::LinkDone& d = std::get<admin::LinkDone>(acted);
  log::info("web.digest_link", "method=POST action={} result=done id={} principal={} client={}", log::q(action),
            d.link.claims.message_id, log::q(d.link.principal.name), req.client);
  return done(d);
}

}  // namespace mxguard::web
