// Quarantine records in a spool env.
#include "mxguard/store/quarantine.hpp"

#include <fmt/format.h>

namespace mxguard::store {

namespace {
constexpr uint8_t kQuarantineIndexVersion = 1;

std::string be64(uint64_t v) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i) {
    k[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return k;
}
}  // namespace

Status quarantine_store(Txn& txn, const SpoolDbs& dbs, const Envelope& e, std::string_view data) {
  (void)data;
  std::string q(1, static_cast<char>(kQuarantineIndexVersion));
  q += be64(static_cast<uint64_t>(e.received_ms));
  return txn.put(dbs.quarantine, e.id, q);
}

}  // namespace mxguard::store
