// The engine's resolver: the same libunbound forwarding set-up as Resolver,
// but every lookup returns at once and its answer arrives through a callback
// run from process(). The shard polls fd() on its ring and calls expire() on
// its tick, so no lookup ever blocks or outlives its timeout.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "mxguard/core/net.hpp"
#include "mxguard/core/result.hpp"
#include "mxguard/dns/resolver.hpp"

namespace mxguard::dns {

class AsyncResolver {
 public:
  static Result<std::unique_ptr<AsyncResolver>> create(const ResolverOptions& options);
  ~AsyncResolver();

  template <typename R>
  using Callback = std::function<void(Answer<R>)>;

  // Each callback runs exactly once: from process() with the answer, from
  // expire() with kTimeout, or from cancel_all()/the destructor with kError.
  void txt(std::string_view name, Callback<TxtRecord> done);
  void mx(std::string_view name, Callback<MxRecord> done);
  // As Resolver::tlsa: only a secure answer may be used for DANE.
  void tlsa(std::string_view name, Callback<TlsaRecord> done);
  void a(std::string_view name, Callback<IpAddress> done);
  void aaaa(std::string_view name, Callback<IpAddress> done);
  void addresses(std::string_view name, Callback<IpAddress> done);  // A then AAAA, both asked at once
  void ptr(const IpAddress& ip, Callback<std::string> done);        // host names, no trailing dot

  // Runs `fn` from the next process() or expire(), never from inside post():
  // lets a check that needs no lookup still answer asynchronously. fd()
  // turns readable. Counted in pending() until it has run.
  void post(std::function<void()> fn);

  int fd() const;               // readable when answers are waiting
  void process();               // runs the callbacks of arrived answers
  // Times out lookups older than the timeout. `now_ms` is milliseconds since
  // the Unix epoch (the system clock, as the engine's shard clock); lookups
  // are stamped with the same clock when they start.
  void expire(int64_t now_ms);
  size_t pending() const;       // callbacks not yet run
  void cancel_all();

 private:
  struct Impl;
  explicit AsyncResolver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mxguard::dns
