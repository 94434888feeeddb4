// Digest links: the token checks, the link's principal and the one action a
// link may take, through the quarantine operations every front end uses.
#include "mxguard/admin/digest_links.hpp"

#include <fmt/format.h>

#include "mxguard/admin/text.hpp"
#include "mxguard/digest/send.hpp"
#include "mxguard/store/quarantine.hpp"

namespace mxguard::admin {

namespace {

LinkRefusal refuse(LinkProblem p, std::string message) {
  Failure f;
  switch (p) {
    case LinkProblem::kInvalid:
    case LinkProblem::kForged:
    case LinkProblem::kUnknownKey:
    case LinkProblem::kExpired:
    case LinkProblem::kWrongAction: f = usage(std::move(message), "token"); break;
    case LinkProblem::kGone: f = not_found(std::move(message)); break;
    case LinkProblem::kUsed: f = conflict(std::move(message)); break;
    case LinkProblem::kNotPermitted: f = forbidden(message); f.message = std::move(message); break;
    case LinkProblem::kUnavailable: f = unavailable(std::move(message)); break;
  }
  return {p, std::move(f)};
}

LinkProblem problem_of(digest::TokenError e) {
  switch (e) {
    case digest::TokenError::kMalformed: return LinkProblem::kInvalid;
    case digest::TokenError::kUnknownKey: return LinkProblem::kUnknownKey;
    case digest::TokenError::kBadSignature: return LinkProblem::kForged;
    case digest::TokenError::kExpired: return LinkProblem::kExpired;
    case digest::TokenError::kUnavailable: return LinkProblem::kUnavailable;
  }
  return LinkProblem::kInvalid;
}

std::string_view action_words(digest::Action a) {
  switch (a) {
    case digest::Action::kRelease: return "release";
    case digest::Action::kReleaseAllow: return "release and allow the sender";
    case digest::Action::kDelete: return "delete";
  }
  return "?";
}

}  // namespace

std::string_view to_string(LinkProblem p) {
  switch (p) {
    case LinkProblem::kInvalid: return "invalid";
    case LinkProblem::kForged: return "forged";
    case LinkProblem::kUnknownKey: return "unknown_key";
    case LinkProblem::kExpired: return "expired";
    case LinkProblem::kWrongAction: return "wrong_action";
    case LinkProblem::kGone: return "gone";
    case LinkProblem::kUsed: return "used";
    case LinkProblem::kNotPermitted: return "not_permitted";
    case LinkProblem::kUnavailable: return "unavailable";
  }
  return "?";
}

LinkOutcome<DigestLink> inspect_digest_link(const Config& cfg, store::ConfigStore& store, std::string_view action,
                                            std::string_view token, int64_t now_ms) {
  auto wanted = digest::action_from_string(action);
  if (!wanted) return refuse(LinkProblem::kInvalid, "This is not a digest link: there is no such action.");
  auto verified = digest::verify(store, token, now_ms);
  if (auto* r = std::get_if<digest::TokenRefusal>(&verified)) {
    LinkProblem p = problem_of(r->error);
    switch (p) {
      case LinkProblem::kForged:
        return refuse(p, "This link's signature does not match: it was altered or forged. Nothing was changed.");
      case LinkProblem::kUnknownKey:
        return refuse(p, "This link was signed with a key this appliance no longer has. Nothing was changed.");
      case LinkProblem::kExpired:
        return refuse(p, "This link has expired: the message's quarantine retention is over. Nothing was changed.");
      case LinkProblem::kUnavailable: return refuse(p, fmt::format("The quarantine cannot be read now: {}", r->message));
      default: return refuse(p, fmt::format("This is not a valid digest link ({}). Nothing was changed.", r->message));
    }
  }
  DigestLink link;
  link.claims = std::get<digest::Claims>(std::move(verified));
  const digest::Claims& c = link.claims;
  if (c.action != *wanted)
    return refuse(LinkProblem::kWrongAction,
                  fmt::format("This link's token is for \"{}\", not \"{}\": the address was changed. Nothing was changed.",
                              action_words(c.action), action_words(*wanted)));
  auto used = digest::link_used(store, c);
  if (!used) return refuse(LinkProblem::kUnavailable, fmt::format("The quarantine cannot be read now: {}", used.error()));
  if (*used)
    return refuse(LinkProblem::kUsed, fmt::format("This link was already used: the message was {} before.",
                                                  c.action == digest::Action::kDelete ? "deleted" : "released"));

  // The principal acts for the recipient's addresses as they are now (a
  // shadow removed since the digest no longer counts).
  auto scope = digest::recipient_scope(store, c.recipient);
  if (!scope) return refuse(LinkProblem::kUnavailable, fmt::format("The quarantine cannot be read now: {}", scope.error()));
  const std::string gone =
      "This message is no longer in quarantine for you: it was released, deleted or removed at the end of its "
      "retention. Nothing was changed.";
  if (scope->addresses.empty()) return refuse(LinkProblem::kGone, gone);
  Principal p;
  p.name = "digest:" + c.recipient;
  p.role = store::Role::kUser;
  auto own = store.domain(store::quarantine_domain_of(c.recipient));
  if (!own) return refuse(LinkProblem::kUnavailable, fmt::format("The quarantine cannot be read now: {}", own.error()));
  if (*own) p.customer = (*own)->customer;
  p.link_addresses = scope->addresses;
  auto shown = show_quarantined(Actor{cfg, store, p}, c.message_id);
  if (!shown) {
    if (shown.failure().category == Category::kUnavailable)
      return refuse(LinkProblem::kUnavailable, fmt::format("The quarantine cannot be read now: {}", shown.failure().message));
    return refuse(LinkProblem::kGone, gone);
  }
  link.held = std::move(shown->held);
  // Only the addresses it is held for: the action touches nothing else.
  p.link_addresses = link.held.visible;
  link.principal = std::move(p);
  if (c.action == digest::Action::kReleaseAllow) {
    auto allowed = sender_allow_entries(Actor{cfg, store, link.principal}, link.held, link.held.visible);
    if (!allowed) {
      if (allowed.failure().category == Category::kUnavailable)
        return refuse(LinkProblem::kUnavailable, allowed.failure().message);
      return refuse(LinkProblem::kNotPermitted,
                    fmt::format("A digest link cannot allow a sender: {}. The Release link of the same message in "
                                "your digest releases it. Nothing was changed.",
                                allowed.failure().message));
    }
  }
  return link;
}

LinkOutcome<LinkDone> follow_digest_link(const Config& cfg, store::ConfigStore& store, std::string_view action,
                                         std::string_view token, int64_t now_ms) {
  auto inspected = inspect_digest_link(cfg, store, action, token, now_ms);
  if (auto* r = std::get_if<LinkRefusal>(&inspected)) return std::move(*r);
  LinkDone done;
  done.link = std::get<DigestLink>(std::move(inspected));
  const digest::Claims& c = done.link.claims;
  // Claimed before acting: of two requests racing for one link only one acts.
  auto first = digest::claim_link(store, c, now_ms);
  if (!first) return refuse(LinkProblem::kUnavailable, fmt::format("The quarantine cannot be changed now: {}", first.error()));
  if (!*first)
    return refuse(LinkProblem::kUsed, fmt::format("This link was already used: the message was {} before.",
                                                  c.action == digest::Action::kDelete ? "deleted" : "released"));
  Actor a{cfg, store, done.link.principal};
  QuarantineAction in;
  in.id = c.message_id;
  in.recipients = done.link.held.visible;
  if (c.action == digest::Action::kDelete) {
    auto d = delete_quarantined(a, in);
    if (!d) return refuse(LinkProblem::kUnavailable, d.failure().message);
    done.deleted = std::move(*d);
  } else {
    in.allow_sender = c.action == digest::Action::kReleaseAllow;
    auto r = release_quarantined(a, in);
    if (!r) return refuse(LinkProblem::kUnavailable, r.failure().message);
    done.released = std::move(*r);
  }
  return done;
}

}  // namespace mxguard::admin
