// Private to the dns module: running libunbound queries concurrently under
// one deadline, and classifying what came back.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mxguard/core/config.hpp"
#include "mxguard/dns/resolver.hpp"

struct ub_result;

namespace mxguard::dns {

struct ResultDeleter {
  void operator()(ub_result* r) const;
};
using UbResult = std::unique_ptr<ub_result, ResultDeleter>;

struct Question {
  std::string name;
  int rrtype;
};

// What one question came to: a status and, when the server answered, the
// libunbound result holding the RDATA (status kOk) or the alias (any status).
struct Reply {
  LookupStatus status = LookupStatus::kError;
  std::string error;
  UbResult result;
};

// The DNS outcome of a finished query: libunbound's error code and result
// (null when it failed before asking).
Reply classify(int err, UbResult result);

// Asks all `questions` at once; questions still open at the deadline are
// cancelled and reported as kTimeout. Replies are in question order.
std::vector<Reply> exchange(ub_ctx* ctx, const std::vector<Question>& questions, Millis timeout);

}  // namespace mxguard::dns
