// Answer helpers shared by both resolvers: alias names and the A+AAAA merge.
#include "answer.hpp"

#include "mxguard/core/strings.hpp"

namespace mxguard::dns {

namespace {

// libunbound writes names with a trailing dot and in the case they came in.
std::string comparable_name(const char* name) {
  std::string s = to_lower(name ? name : "");
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

bool is_failure(LookupStatus s) {
  return s == LookupStatus::kServFail || s == LookupStatus::kTimeout || s == LookupStatus::kError;
}

std::string describe(const Answer<IpAddress>& a) {
  return a.error.empty() ? std::string(to_string(a.status)) : a.error;
}

}  // namespace

std::string alias_target(const ub_result& r) {
  if (!r.canonname) return {};
  std::string canon = comparable_name(r.canonname);
  return canon == comparable_name(r.qname) ? std::string() : canon;
}

Answer<IpAddress> merge(Answer<IpAddress> v4, Answer<IpAddress> v6) {
  Answer<IpAddress> out;
  out.canonical_name = v4.canonical_name.empty() ? v6.canonical_name : v4.canonical_name;
  out.secure = v4.secure && v6.secure;
  if (v4.ok() || v6.ok()) {
    out.status = LookupStatus::kOk;
    out.records = std::move(v4.records);
    out.records.insert(out.records.end(), v6.records.begin(), v6.records.end());
    if (is_failure(v4.status)) out.error = "A lookup: " + describe(v4);
    if (is_failure(v6.status)) out.error = "AAAA lookup: " + describe(v6);
    return out;
  }
  const Answer<IpAddress>& worst = is_failure(v4.status) || !is_failure(v6.status) ? v4 : v6;
  out.status = is_failure(worst.status) || worst.status == LookupStatus::kNxDomain ? worst.status
                                                                                   : LookupStatus::kNoData;
  out.error = worst.error;
  return out;
}

}  // namespace mxguard::dns
