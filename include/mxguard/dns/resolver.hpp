// The DNS resolver: libunbound forwarding only to the configured servers,
// with answers as values (a status plus parsed records, never an exception).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/config.hpp"
#include "mxguard/core/result.hpp"
#include "mxguard/dns/rdata.hpp"

struct ub_ctx;

namespace mxguard::dns {

enum class LookupStatus : uint8_t {
  kOk,        // records present
  kNxDomain,  // the name does not exist
  kNoData,    // the name exists, but has no record of this type
  kServFail,  // the servers could not answer (broken zone, unreachable authority)
  kTimeout,   // no answer within the resolver's timeout
  kError,     // anything else: bad name, DNSSEC failure, malformed data, refused
};
// "ok", "nxdomain", "nodata", "servfail", "timeout", "error": stable, used in JSON.
std::string_view to_string(LookupStatus s);

template <typename Record>
struct Answer {
  LookupStatus status = LookupStatus::kError;
  std::vector<Record> records;  // non-empty exactly when status is kOk
  std::string error;            // why, for kError (and a note when a partial answer is kOk)
  std::string canonical_name;   // the target when the name is an alias (CNAME), else empty
  bool secure = false;          // DNSSEC-validated; only possible with a trust anchor
  bool ok() const { return status == LookupStatus::kOk; }
};

struct ResolverOptions {
  std::vector<std::string> servers;  // "ip", "ip:port", "[v6]:port" (port 53 by default)
  Millis timeout{5000};              // bound on one lookup, retries included
  std::string trust_anchor_file;     // DNSSEC validation only when set (DANE needs it)
};

// Blocking lookups for the console. Internally every lookup is an async
// libunbound query driven by polling ub_fd() until a deadline, so the engine
// can later register the same fd with its ring instead of blocking.
class Resolver {
 public:
  static Result<Resolver> create(const std::vector<std::string>& servers, Millis timeout);
  static Result<Resolver> create(const ResolverOptions& options);

  Answer<TxtRecord> txt(std::string_view name);
  Answer<MxRecord> mx(std::string_view name);
  // TLSA at `name` (tlsa_name() builds it). DANE may only use the records
  // when the answer is secure; a bogus one is kError.
  Answer<TlsaRecord> tlsa(std::string_view name);
  // A and AAAA, asked concurrently; IPv4 addresses first.
  Answer<IpAddress> addresses(std::string_view name);

  Millis timeout() const { return timeout_; }

  struct ContextDeleter {
    void operator()(ub_ctx* ctx) const;
  };
  using Context = std::unique_ptr<ub_ctx, ContextDeleter>;

 private:
  Resolver(Context ctx, Millis timeout) : ctx_(std::move(ctx)), timeout_(timeout) {}
  Context ctx_;
  Millis timeout_;
};

}  // namespace mxguard::dns
