// Verdicts: a score against a domain's thresholds, and how one reply is
// chosen for a message whose recipients' domains disagree.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace mxguard::scan {

enum class Action : uint8_t { kDeliver, kQuarantine, kReject, kGreylist };
std::string_view to_string(Action a);  // "deliver", "quarantine", "reject", "greylist"
std::optional<Action> action_from_string(std::string_view s);

struct Thresholds {
  double reject = 15.0;
  double quarantine = 6.0;
  double greylist = 4.0;
};

// The action a score earns: reject, then quarantine, then greylist, then deliver.
Action action_for(double score, const Thresholds& t);

// One recipient's action, and whether its allow list matched.
struct RecipientVerdict {
  Action action = Action::kDeliver;
  bool allowlisted = false;
};

// What the end of DATA answers and what happens per recipient. When every
// recipient agrees on reject (or greylist) the message is refused; otherwise
// it is accepted and a recipient that would have rejected is quarantined
// instead (nothing accepted is lost), one that would have greylisted is
// delivered (greylisting only delays, and the reply already said 250).
struct MessageVerdict {
  Action reply = Action::kDeliver;          // kReject/kGreylist: refuse; else 250
  std::vector<Action> per_recipient;        // deliver or quarantine, when accepted
};
MessageVerdict combine(const std::vector<RecipientVerdict>& recipients);

}  // namespace mxguard::scan
