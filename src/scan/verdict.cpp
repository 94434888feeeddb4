// Verdicts: thresholds to actions, and one reply for many recipients.
#include "mxguard/scan/verdict.hpp"

namespace mxguard::scan {

std::string_view to_string(Action a) {
  switch (a) {
    case Action::kDeliver: return "deliver";
    case Action::kQuarantine: return "quarantine";
    case Action::kReject: return "reject";
    case Action::kGreylist: return "greylist";
  }
  return "deliver";
}

std::optional<Action> action_from_string(std::string_view s) {
  for (Action a : {Action::kDeliver, Action::kQuarantine, Action::kReject, Action::kGreylist})
    if (to_string(a) == s) return a;
  return std::nullopt;
}

Action action_for(double score, const Thresholds& t) {
  if (score >= t.reject) return Action::kReject;
  if (score >= t.quarantine) return Action::kQuarantine;
  if (score >= t.greylist) return Action::kGreylist;
  return Action::kDeliver;
}

MessageVerdict combine(const std::vector<RecipientVerdict>& recipients) {
  MessageVerdict v;
  std::vector<Action> actions;
  for (const auto& r : recipients) actions.push_back(r.allowlisted ? Action::kDeliver : r.action);
  if (actions.empty()) return v;
  bool all_same = true;
  for (Action a : actions) all_same = all_same && a == actions.front();
  if (all_same && (actions.front() == Action::kReject || actions.front() == Action::kGreylist)) {
    v.reply = actions.front();
    return v;
  }
  // Greylisting a message some recipient rejects would only delay the
  // reject; when the refusals are all reject or greylist, refuse temporarily
  // only if any recipient greylists (the retry then meets the reject).
  bool all_refuse = true, any_greylist = false;
  for (Action a : actions) {
    all_refuse = all_refuse && (a == Action::kReject || a == Action::kGreylist);
    any_greylist = any_greylist || a == Action::kGreylist;
  }
  if (all_refuse) {
    v.reply = any_greylist ? Action::kGreylist : Action::kReject;
    return v;
  }
  v.reply = Action::kDeliver;
  for (Action a : actions) {
    if (a == Action::kReject) a = Action::kQuarantine;
    if (a == Action::kGreylist) a = Action::kDeliver;
    v.per_recipient.push_back(a);
  }
  bool any_quarantine = false;
  for (Action a : v.per_recipient) any_quarantine = any_quarantine || a == Action::kQuarantine;
  if (any_quarantine) v.reply = Action::kQuarantine;
  return v;
}

}  // namespace mxguard::scan
