// The config environment: customers and domains (later users, recipients,
// lists, settings, rule bundles). Written by the console, read by the shards
// through short read transactions, so a change is seen without a reload.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mxguard/core/result.hpp"
#include "mxguard/store/accounts.hpp"
#include "mxguard/store/lmdb.hpp"
#include "mxguard/store/policy.hpp"

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
  // Subaddress delimiters for list and callout lookups ("" = none): bob+news@
  // is known when bob@ is. Records written before the setting existed mean "+".
  std::string recipient_delimiter = "+";
  std::string tls_policy = "may";              // none | may | encrypt | dane
  std::string trust = "ip";                    // ip | auth
  std::string auth_user;
  // The relay password for trust=auth. It has to be sent to the backend, so it
  // cannot be hashed; it is never printed and audit entries mask it.
  std::string auth_password;
  // Verdict thresholds (scores), enforced reject >= quarantine >= greylist.
  double reject_threshold = 15.0;
  double quarantine_threshold = 6.0;
  double greylist_threshold = 4.0;
  std::string digest_from;   // From address of quarantine digests ("" = postmaster@domain)
  unsigned quarantine_days = 30;
  int64_t created_ms = 0;
};

// A key that signs quarantine digest links (Ed25519, libsodium's layout).
// The newest is the signing key; retired ones still verify the links they
// signed until those expire.
struct DigestKey {
  std::string id;          // short, URL-safe: named in every token
  std::string public_key;  // 32 bytes
  std::string secret_key;  // 64 bytes; never printed
  int64_t created_ms = 0;
  int64_t retired_ms = 0;  // 0 while it is the signing key
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
  // Removing or renaming a customer checks and writes in one transaction, so
  // a domain added meanwhile cannot be left pointing at a missing customer.
  enum class CustomerChange : uint8_t { kDone, kNoCustomer, kInUse, kNameTaken };
  // Refuses (kInUse) while any domain or user still belongs to the customer.
  Result<CustomerChange> remove_customer(std::string_view name);
  // Moves the customer's domains and users to the new name with it.
  Result<CustomerChange> rename_customer(std::string_view from, std::string_view to);

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
  // Reads, changes and writes a domain in one write transaction, so a
  // concurrent change cannot be lost between the read and the write. `change`
  // sees the current record; an error from it aborts and writes nothing.
  // Returns the record as written, nullopt when the domain does not exist.
  Result<std::optional<Domain>> update_domain(std::string_view name, const std::function<Status(Domain&)>& change);
  Result<std::vector<Domain>> domains() const;

  // Recipients of `list`-mode domains ("mailbox" entries for now; aliases,
  // forwarders and groups share the table later). Addresses are stored lower-case.
  Result<bool> add_recipient(std::string_view domain, std::string_view local);
  Result<bool> remove_recipient(std::string_view domain, std::string_view local);
  Result<std::vector<std::string>> recipients(std::string_view domain) const;
  // Adds all of `locals` in one transaction (all or nothing); returns how many were new.
  Result<size_t> import_recipients(std::string_view domain, const std::vector<std::string>& locals);

  // Allow and block lists (see policy.hpp). add: false when already present.
  Result<bool> add_list_entry(const ListEntry& e);
  Result<bool> remove_list_entry(const ListEntry& e);
  // Entries of one scope ("" = global), or of every scope when `all`.
  Result<std::vector<ListEntry>> list_entries(std::string_view scope, bool all) const;

  // Users: add refuses an existing name (false, nothing written).
  Result<bool> add_user(const User& u);
  Result<std::optional<User>> user(std::string_view name) const;
  Result<std::vector<User>> users() const;
  Result<bool> remove_user(std::string_view name);
  // Replaces a stored user's password hash; false when there is no such user.
  Result<bool> set_user_password(std::string_view name, std::string_view password_hash);
  // Turns a user's quarantine digest on or off; false when there is no such user.
  Result<bool> set_user_digest(std::string_view name, bool on);
  // A user's digest setting and shadow addresses, changed in one write
  // (nullopt leaves one as it is); false when there is no such user.
  Result<bool> set_user_settings(std::string_view name, std::optional<bool> digest,
                                 const std::optional<std::vector<std::string>>& shadows);

  // Digest link keys. The signing key, nullopt before the first one is made.
  Result<std::optional<DigestKey>> digest_signing_key() const;
  // Every stored key, signing and retired, by id.
  Result<std::optional<DigestKey>> digest_key(std::string_view id) const;
  Result<std::vector<DigestKey>> digest_keys() const;
  // Stores `k` as the signing key only when there is none yet (first use;
  // two racing first uses agree on one key). Returns the signing key.
  Result<DigestKey> ensure_digest_key(const DigestKey& k);
  // Rotation, in one transaction: `k` becomes the signing key, the previous
  // one is retired at k.created_ms, and keys retired before `drop_retired_before_ms`
  // (whose links have all expired) are deleted. Returns the ids deleted.
  Result<std::vector<std::string>> rotate_digest_key(const DigestKey& k, int64_t drop_retired_before_ms);
  // When `recipient` (lower-cased) last got a digest: the end of the period
  // it covered, 0 when never.
  Result<int64_t> last_digest(std::string_view recipient) const;
  Status set_last_digest(std::string_view recipient, int64_t until_ms);
  // Marks a digest link's action as done (`link`: recipient, message and
  // action, see digest::claim_link), kept until `expires_ms`; false when it
  // was done before. Marks past their expiry are dropped in the same write.
  Result<bool> use_digest_link(std::string_view link, int64_t expires_ms, int64_t now_ms);
  // Whether a digest link's action was done (read-only: a link page shown by
  // GET says so without writing).
  Result<bool> digest_link_used(std::string_view link) const;

  // The audit log, oldest first. Entries are only ever appended.
  Status append_audit(const AuditEntry& e);
  Result<std::vector<AuditEntry>> audit() const;

  // Rule bundles, numbered in the order they were stored. `meta` is a small
  // JSON object (name, digest, rules, pushed_ms, signed_by, factory) kept next
  // to the file so listing does not read megabytes.
  struct BundleRecord {
    uint64_t seq = 0;
    std::string meta;
    bool active = false;
  };
  // Stores a bundle file and makes it the active one, in one transaction;
  // keeps the newest `keep` bundles (and the active one, and those in
  // `never_prune`); `pruned` lists the ones dropped.
  struct StoredBundle {
    uint64_t seq = 0;
    std::vector<uint64_t> pruned;
  };
  Result<StoredBundle> store_bundle(std::string_view file, std::string_view meta, size_t keep,
                                    const std::vector<uint64_t>& never_prune);
  Result<uint64_t> add_bundle(std::string_view file, std::string_view meta, size_t keep = 10);
  Result<std::vector<BundleRecord>> bundles() const;
  Result<std::optional<std::string>> bundle_file(uint64_t seq) const;
  Result<std::optional<uint64_t>> active_bundle() const;
  // Makes the bundle that was active before the active one active again
  // (one step back through the pushes and rollbacks; the pruned are
  // skipped); returns it, nullopt when there is none. rollback_target says
  // which bundle that would be, without changing anything.
  Result<std::optional<uint64_t>> rollback_target() const;
  Result<std::optional<uint64_t>> rollback_bundle();
  // Makes stored bundle `seq` active (forward again after a rollback); the
  // one active before goes on the history, as for a push. False when `seq`
  // is not stored.
  Result<bool> activate_bundle(uint64_t seq);
  // A counter `mxguard rules local reload` moves: the engine's watcher reads
  // the local rules again when it changes.
  Result<uint64_t> local_rules_generation() const;
  Result<uint64_t> bump_local_rules_generation();

  // Public keys (base64 Ed25519) trusted to sign rule bundles, by name.
  Result<bool> add_trusted_key(std::string_view name, std::string_view key);
  Result<bool> remove_trusted_key(std::string_view name);
  Result<std::vector<std::pair<std::string, std::string>>> trusted_keys() const;
  // The same with when each was added (0: stored before that was kept).
  struct TrustedKey {
    std::string name, key;
    int64_t added_ms = 0;
  };
  Result<std::vector<TrustedKey>> trusted_key_records() const;

  const Env& env() const { return env_; }
  MDB_dbi domains_dbi() const { return dbis_.domains; }
  MDB_dbi recipients_dbi() const { return dbis_.recipients; }
  MDB_dbi lists_dbi() const { return dbis_.lists; }

 private:
  struct Dbis {
    MDB_dbi customers, domains, recipients, lists, users, audit, bundles, settings, digest;
  };
  ConfigStore(Env env, Dbis dbis) : env_(std::move(env)), dbis_(dbis) {}
  Env env_;
  Dbis dbis_;
};

// A shard's reader: one reusable read transaction (reset between uses, so no
// snapshot is held across an io_uring wait). Decoded domain records are kept
// with the bytes they came from: a message looks its domain up at RCPT, at
// scan time and at delivery, and the record's JSON is parsed again only when
// its bytes in the store have changed.
class ConfigReader {
 public:
  explicit ConfigReader(const ConfigStore& store);
  ~ConfigReader();
  ConfigReader(const ConfigReader&) = delete;
  // The domain's status, nullopt when unknown; error when the store fails.
  Result<std::optional<Domain>> domain(std::string_view name);
  // Everything RCPT needs, read in one snapshot.
  Result<RcptPolicy> rcpt_policy(const PolicyQuery& q);
  // Global lists only: for the connection (ip) and MAIL FROM (sender).
  Result<ListVerdict> global_policy(const PolicyQuery& q);
  // The active domain added first (the earliest created_ms, then the name),
  // nullopt when no domain is active: where the bare RCPT TO:<postmaster>
  // goes when smtp.postmaster is not set.
  Result<std::optional<std::string>> oldest_active_domain();

 private:
  MDB_txn* begin();
  Result<const Domain*> decoded(std::string_view name, std::string_view bytes);
  const ConfigStore& store_;
  MDB_txn* txn_ = nullptr;
  struct CachedDomain {
    std::string bytes;
    Domain domain;
  };
  // Looked up by string_view without building a key (C++20 transparent lookup).
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, CachedDomain, NameHash, std::equal_to<>> domains_;
  // oldest_active_domain()'s answer and the snapshot (LMDB transaction id) it
  // was read in: it walks every domain, so it walks again only after a write.
  struct OldestActive {
    size_t txn_id = 0;
    std::optional<std::string> name;
  };
  std::optional<OldestActive> oldest_active_;
};

}  // namespace mxguard::store
