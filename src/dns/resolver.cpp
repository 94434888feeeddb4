// The public lookups: ask through exchange(), parse the RDATA into values.
#include "mxguard/dns/resolver.hpp"

#include <fmt/format.h>
#include <unbound.h>

#include "context.hpp"
#include "exchange.hpp"
#include "mxguard/core/strings.hpp"

namespace mxguard::dns {

namespace {

// libunbound writes names with a trailing dot and in the case they came in.
std::string comparable_name(const char* name) {
  std::string s = to_lower(name ? name : "");
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// The alias target, when answering `name` took a CNAME; empty otherwise.
std::string alias_target(const ub_result& r) {
  if (!r.canonname) return {};
  std::string canon = comparable_name(r.canonname);
  return canon == comparable_name(r.qname) ? std::string() : canon;
}

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

bool is_failure(LookupStatus s) {
  return s == LookupStatus::kServFail || s == LookupStatus::kTimeout || s == LookupStatus::kError;
}

std::string describe(const Answer<IpAddress>& a) {
  return a.error.empty() ? std::string(to_string(a.status)) : a.error;
}

// One answer for "the addresses of a host" from its A and AAAA answers: any
// address is success (a lost AAAA answer is only noted); without any, a
// failure says more than NXDOMAIN/NODATA.
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

}  // namespace

std::string_view to_string(LookupStatus s) {
  switch (s) {
    case LookupStatus::kOk: return "ok";
    case LookupStatus::kNxDomain: return "nxdomain";
    case LookupStatus::kNoData: return "nodata";
    case LookupStatus::kServFail: return "servfail";
    case LookupStatus::kTimeout: return "timeout";
    case LookupStatus::kError: return "error";
  }
  return "error";
}

void Resolver::ContextDeleter::operator()(ub_ctx* ctx) const { ub_ctx_delete(ctx); }

Result<Resolver> Resolver::create(const std::vector<std::string>& servers, Millis timeout) {
  ResolverOptions o;
  o.servers = servers;
  o.timeout = timeout;
  return create(o);
}

Result<Resolver> Resolver::create(const ResolverOptions& options) {
  auto ctx = make_context(options);
  if (!ctx) return Error{ctx.error()};
  return Resolver(std::move(*ctx), options.timeout);
}

Answer<TxtRecord> Resolver::txt(std::string_view name) {
  auto replies = exchange(ctx_.get(), {{std::string(name), kTypeTxt}}, timeout_);
  return to_answer<TxtRecord>(std::move(replies[0]), parse_txt, "TXT");
}

Answer<MxRecord> Resolver::mx(std::string_view name) {
  auto replies = exchange(ctx_.get(), {{std::string(name), kTypeMx}}, timeout_);
  return to_answer<MxRecord>(std::move(replies[0]), parse_mx, "MX");
}

Answer<IpAddress> Resolver::addresses(std::string_view name) {
  auto replies = exchange(ctx_.get(), {{std::string(name), kTypeA}, {std::string(name), kTypeAaaa}}, timeout_);
  return merge(to_answer<IpAddress>(std::move(replies[0]), parse_a, "A"),
               to_answer<IpAddress>(std::move(replies[1]), parse_aaaa, "AAAA"));
}

}  // namespace mxguard::dns
