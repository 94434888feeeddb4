// The config environment: customers and domains (later users, recipients,
// lists, settings, rule bundles). Written by the console, read by the shards
// through short read transactions, so a change is seen without a reload.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mxguard/core/result.hpp"
#include "mxguard/store/lmdb.hpp"

namespace mxguard::store {

enum class DomainStatus : uint8_t { kPendingVerification, kActive, kSuspended };
std::string_view to_string(DomainStatus s);
std::optional<DomainStatus> domain_status_from_string(std::string_view s);

struct Customer {
  std::string name;
  int64_t created_ms = 0;
};

struct Domain {
  std::string name;      // A-label form, lower case, no trailing dot
  std::string customer;
  DomainStatus status = DomainStatus::kPendingVerification;
  std::string verify_token;  // "mxg-" + 32 base62 characters
  std::string backend_host;
  uint16_t backend_port = 25;
  std::string recipients_mode = "accept-all";  // accept-all | callout | list
  std::string tls_policy = "may";              // none | may | encrypt | dane
  std::string trust = "ip";                    // ip | auth
  std::string auth_user;
  int64_t created_ms = 0;
};

// Records are a version byte followed by JSON.
inline constexpr uint8_t kConfigRecordVersion = 1;
std::string encode_domain(const Domain& d);
Result<Domain> decode_domain(std::string_view bytes);
std::string encode_customer(const Customer& c);
Result<Customer> decode_customer(std::string_view bytes);

class ConfigStore {
 public:
  static std::string dir_for(const std::string& state_dir);
  static Result<std::unique_ptr<ConfigStore>> open(const std::string& state_dir);

  Result<std::optional<Customer>> customer(std::string_view name) const;
  Status put_customer(const Customer& c);
  Result<std::vector<Customer>> customers() const;

  // Adds a customer that must not exist yet; false (nothing written) when it does.
  Result<bool> add_customer(const Customer& c);

  Result<std::optional<Domain>> domain(std::string_view name) const;
  Status put_domain(const Domain& d);

  // What add_domain did, or which precondition stopped it (then nothing was written).
  enum class AddOutcome : uint8_t { kAdded, kAddedWithCustomer, kDomainExists, kNoCustomer };
  // Adds a domain that must not exist yet, in one write transaction: the checks
  // run under LMDB's writer lock, so two writers racing for one name cannot
  // both win. When `create_customer` is set, a missing d.customer is created
  // in the same transaction (created_ms = d.created_ms); otherwise it stops the add.
  Result<AddOutcome> add_domain(const Domain& d, bool create_customer);
  Result<bool> remove_domain(std::string_view name);
  Result<std::vector<Domain>> domains() const;

  const Env& env() const { return env_; }
  MDB_dbi domains_dbi() const { return domains_; }

 private:
  ConfigStore(Env env, MDB_dbi customers, MDB_dbi domains)
      : env_(std::move(env)), customers_(customers), domains_(domains) {}
  Env env_;
  MDB_dbi customers_, domains_;
};

// A shard's reader: one reusable read transaction (reset between uses, so no
// snapshot is held across an io_uring wait).
class ConfigReader {
 public:
  explicit ConfigReader(const ConfigStore& store);
  ~ConfigReader();
  ConfigReader(const ConfigReader&) = delete;
  // The domain's status, nullopt when unknown; error when the store fails.
  Result<std::optional<Domain>> domain(std::string_view name);

 private:
  const ConfigStore& store_;
  MDB_txn* txn_ = nullptr;
};

}  // namespace mxguard::store
