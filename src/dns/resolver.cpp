// The public blocking lookups: ask through exchange(), turn replies into answers.
#include "mxguard/dns/resolver.hpp"

#include <fmt/format.h>
#include <unbound.h>

#include "answer.hpp"
#include "context.hpp"
#include "exchange.hpp"

namespace mxguard::dns {

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

Answer<TlsaRecord> Resolver::tlsa(std::string_view name) {
  auto replies = exchange(ctx_.get(), {{std::string(name), kTypeTlsa}}, timeout_);
  return to_answer<TlsaRecord>(std::move(replies[0]), parse_tlsa, "TLSA");
}

Answer<IpAddress> Resolver::addresses(std::string_view name) {
  auto replies = exchange(ctx_.get(), {{std::string(name), kTypeA}, {std::string(name), kTypeAaaa}}, timeout_);
  return merge(to_answer<IpAddress>(std::move(replies[0]), parse_a, "A"),
               to_answer<IpAddress>(std::move(replies[1]), parse_aaaa, "AAAA"));
}

}  // namespace mxguard::dns
