// Private to the dns module: turning a classified reply into a typed Answer,
// shared by the blocking Resolver and the AsyncResolver so both report alike.
#pragma once

#include <fmt/format.h>
#include <unbound.h>

#include <string>
#include <string_view>

#include "exchange.hpp"
#include "mxguard/dns/resolver.hpp"

namespace mxguard::dns {

// The alias target, when answering the question took a CNAME; empty otherwise.
std::string alias_target(const ub_result& r);

// Parses every record of `reply` with `parse` (Result<Record>(string_view)).
template <typename Record, typename Parse>
Answer<Record> to_answer(Reply reply, Parse parse, std::string_view type) {
  Answer<Record> a;
  a.status = reply.status;
  a.error = std::move(reply.error);
  const ub_result* r = reply.result.get();
  if (!r) return a;
  a.secure = r->secure != 0;
  a.canonical_name = alias_target(*r);
  if (a.status != LookupStatus::kOk) return a;
  for (int i = 0; r->data[i] != nullptr; ++i) {
    auto rec = parse(std::string_view(r->data[i], static_cast<size_t>(r->len[i])));
    if (!rec) {
      // One bad record makes the whole set suspect: report it rather than guess.
      a.status = LookupStatus::kError;
      a.records.clear();
      a.error = fmt::format("malformed {} record from the DNS server: {}", type, rec.error());
      return a;
    }
    a.records.push_back(std::move(*rec));
  }
  if (a.records.empty()) a.status = LookupStatus::kNoData;
  return a;
}

// One answer for "the addresses of a host" from its A and AAAA answers: any
// address is success (a lost AAAA answer is only noted); without any, a
// failure says more than NXDOMAIN/NODATA. IPv4 addresses come first.
Answer<IpAddress> merge(Answer<IpAddress> v4, Answer<IpAddress> v6);

}  // namespace mxguard::dns
