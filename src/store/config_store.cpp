// Config environment records (version byte + JSON) and their accessors.
#include "mxguard/store/config_store.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

#include <nlohmann/json.hpp>

#include "mxguard/core/strings.hpp"

namespace mxguard::store {

namespace {
constexpr size_t kConfigMapSize = size_t{4} << 30;
using nlohmann::json;

std::string with_version(const json& j) {
  std::string out(1, static_cast<char>(kConfigRecordVersion));
  out += j.dump();
  return out;
}

Result<json> parse_record(std::string_view bytes, std::string_view what) {
  if (bytes.empty() || static_cast<uint8_t>(bytes[0]) != kConfigRecordVersion)
    return Error{fmt::format("{} record has an unsupported version", what)};
  json j = json::parse(bytes.substr(1), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error{fmt::format("{} record is corrupt", what)};
  return j;
}
}  // namespace

std::string_view to_string(DomainStatus s) {
  switch (s) {
    case DomainStatus::kPendingVerification: return "pending_verification";
    case DomainStatus::kActive: return "active";
    case DomainStatus::kSuspended: return "suspended";
  }
  return "unknown";
}

std::optional<DomainStatus> domain_status_from_string(std::string_view s) {
  if (s == "pending_verification") return DomainStatus::kPendingVerification;
  if (s == "active") return DomainStatus::kActive;
  if (s == "suspended") return DomainStatus::kSuspended;
  return std::nullopt;
}

std::string encode_domain(const Domain& d) {
  return with_version(json{{"name", d.name},
                           {"customer", d.customer},
                           {"status", to_string(d.status)},
                           {"verify_token", d.verify_token},
                           {"backend_host", d.backend_host},
                           {"backend_port", d.backend_port},
                           {"recipients", d.recipients_mode},
                           {"recipient_delimiter", d.recipient_delimiter},
                           {"tls", d.tls_policy},
                           {"trust", d.trust},
                           {"auth_user", d.auth_user},
                           {"auth_password", d.auth_password},
                           {"reject_threshold", d.reject_threshold},
                           {"quarantine_threshold", d.quarantine_threshold},
                           {"greylist_threshold", d.greylist_threshold},
                           {"digest_from", d.digest_from},
                           {"quarantine_days", d.quarantine_days},
                           {"created_ms", d.created_ms}});
}

Result<Domain> decode_domain(std::string_view bytes) {
  auto j = parse_record(bytes, "domain");
  if (!j) return Error{j.error()};
  try {
    Domain d;
    d.name = j->at("name").get<std::string>();
    d.customer = j->at("customer").get<std::string>();
    auto st = domain_status_from_string(j->at("status").get<std::string>());
    if (!st) return Error{"domain record has an unknown status"};
    d.status = *st;
    d.verify_token = j->value("verify_token", "");
    d.backend_host = j->value("backend_host", "");
    d.backend_port = j->value("backend_port", uint16_t{25});
    d.recipients_mode = j->value("recipients", "accept-all");
    // Added without a new record version: a record without it means the default.
    d.recipient_delimiter = j->value("recipient_delimiter", "+");
    d.tls_policy = j->value("tls", "may");
    d.trust = j->value("trust", "ip");
    d.auth_user = j->value("auth_user", "");
    d.auth_password = j->value("auth_password", "");
    d.reject_threshold = j->value("reject_threshold", 15.0);
    d.quarantine_threshold = j->value("quarantine_threshold", 6.0);
    d.greylist_threshold = j->value("greylist_threshold", 4.0);
    d.digest_from = j->value("digest_from", "");
    d.quarantine_days = j->value("quarantine_days", 30u);
    d.created_ms = j->value("created_ms", int64_t{0});
    return d;
  } catch (const json::exception& e) {
    return Error{fmt::format("domain record is corrupt: {}", e.what())};
  }
}

std::string encode_customer(const Customer& c) {
  return with_version(json{{"name", c.name}, {"created_ms", c.created_ms}});
}

Result<Customer> decode_customer(std::string_view bytes) {
  auto j = parse_record(bytes, "customer");
  if (!j) return Error{j.error()};
  try {
    return Customer{j->at("name").get<std::string>(), j->value("created_ms", int64_t{0})};
  } catch (const json::exception& e) {
    return Error{fmt::format("customer record is corrupt: {}", e.what())};
  }
}

std::string ConfigStore::dir_for(const std::string& state_dir) { return state_dir + "/config"; }

Result<std::unique_ptr<ConfigStore>> ConfigStore::open(const std::string& state_dir) {
  if (::mkdir(state_dir.c_str(), 0750) != 0 && errno != EEXIST)
    return Error{fmt::format("cannot create state directory {}: {}", state_dir, std::strerror(errno))};
  auto env = Env::open(dir_for(state_dir), 16, kConfigMapSize);
  if (!env) return Error{env.error()};
  auto customers = env->open_db("customers");
  if (!customers) return Error{customers.error()};
  auto domains = env->open_db("domains");
  if (!domains) return Error{domains.error()};
  auto recipients = env->open_db("recipients");
  if (!recipients) return Error{recipients.error()};
  auto lists = env->open_db("lists");
  if (!lists) return Error{lists.error()};
  auto users = env->open_db("users");
  if (!users) return Error{users.error()};
  auto audit = env->open_db("audit");
  if (!audit) return Error{audit.error()};
  auto bundles = env->open_db("bundles");
  if (!bundles) return Error{bundles.error()};
  auto settings = env->open_db("settings");
  if (!settings) return Error{settings.error()};
  auto digest = env->open_db("digest");
  if (!digest) return Error{digest.error()};
  return std::unique_ptr<ConfigStore>(new ConfigStore(
      std::move(*env), Dbis{*customers, *domains, *recipients, *lists, *users, *audit, *bundles, *settings, *digest}));
}

template <typename T, typename Decode>
static Result<std::optional<T>> get_record(const Env& env, MDB_dbi dbi, std::string_view key, Decode decode) {
  auto txn = Txn::begin(env, true);
  if (!txn) return Error{txn.error()};
  auto raw = txn->get(dbi, key);
  if (!raw) return Error{raw.error()};
  if (!*raw) return std::optional<T>();
  auto rec = decode(**raw);
  if (!rec) return Error{rec.error()};
  return std::optional<T>(std::move(*rec));
}

template <typename T, typename Decode>
static Result<std::vector<T>> all_records(const Env& env, MDB_dbi dbi, Decode decode) {
  auto txn = Txn::begin(env, true);
  if (!txn) return Error{txn.error()};
  std::vector<T> out;
  Cursor cur(*txn, dbi);
  for (bool ok = cur.seek(""); ok; ok = cur.next()) {
    auto rec = decode(cur.value());
    if (!rec) return Error{fmt::format("{}: {}", cur.key(), rec.error())};
    out.push_back(std::move(*rec));
  }
  return out;
}

static Status put_record(const Env& env, MDB_dbi dbi, std::string_view key, const std::string& value) {
  auto txn = Txn::begin(env, false);
  if (!txn) return Error{txn.error()};
  if (auto s = txn->put(dbi, key, value); !s) return s;
  return txn->commit();
}

Result<std::optional<Customer>> ConfigStore::customer(std::string_view name) const {
  return get_record<Customer>(env_, dbis_.customers, name, decode_customer);
}
Status ConfigStore::put_customer(const Customer& c) {
  return put_record(env_, dbis_.customers, c.name, encode_customer(c));
}
Result<std::vector<Customer>> ConfigStore::customers() const {
  return all_records<Customer>(env_, dbis_.customers, decode_customer);
}
Result<bool> ConfigStore::add_customer(const Customer& c) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto existing = txn->get(dbis_.customers, c.name);
  if (!existing) return Error{existing.error()};
  if (*existing) return false;
  if (auto s = txn->put(dbis_.customers, c.name, encode_customer(c)); !s) return Error{s.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return true;
}

// Keys and records of `dbi` whose owner (as `owner_of` reads it) is `customer`.
template <typename T, typename Decode, typename Owner>
static Result<std::vector<std::pair<std::string, T>>> owned_by(Txn& txn, MDB_dbi dbi, std::string_view customer,
                                                               Decode decode, Owner owner_of) {
  std::vector<std::pair<std::string, T>> out;
  Cursor cur(txn, dbi);
  for (bool ok = cur.seek(""); ok; ok = cur.next()) {
    auto rec = decode(cur.value());
    if (!rec) return Error{fmt::format("{}: {}", cur.key(), rec.error())};
    if (owner_of(*rec) == customer) out.emplace_back(std::string(cur.key()), std::move(*rec));
  }
  return out;
}

Result<ConfigStore::CustomerChange> ConfigStore::remove_customer(std::string_view name) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto existing = txn->get(dbis_.customers, name);
  if (!existing) return Error{existing.error()};
  if (!*existing) return CustomerChange::kNoCustomer;
  auto domains = owned_by<Domain>(*txn, dbis_.domains, name, decode_domain, [](const Domain& d) { return d.customer; });
  if (!domains) return Error{domains.error()};
  auto users = owned_by<User>(*txn, dbis_.users, name, decode_user, [](const User& u) { return u.customer; });
  if (!users) return Error{users.error()};
  if (!domains->empty() || !users->empty()) return CustomerChange::kInUse;
  if (auto d = txn->del(dbis_.customers, name); !d) return Error{d.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return CustomerChange::kDone;
}

Result<ConfigStore::CustomerChange> ConfigStore::rename_customer(std::string_view from, std::string_view to) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto old_raw = txn->get(dbis_.customers, from);
  if (!old_raw) return Error{old_raw.error()};
  if (!*old_raw) return CustomerChange::kNoCustomer;
  auto taken = txn->get(dbis_.customers, to);
  if (!taken) return Error{taken.error()};
  if (*taken) return CustomerChange::kNameTaken;
  auto c = decode_customer(**old_raw);
  if (!c) return Error{c.error()};
  c->name = std::string(to);
  auto domains = owned_by<Domain>(*txn, dbis_.domains, from, decode_domain, [](const Domain& d) { return d.customer; });
  if (!domains) return Error{domains.error()};
  auto users = owned_by<User>(*txn, dbis_.users, from, decode_user, [](const User& u) { return u.customer; });
  if (!users) return Error{users.error()};
  for (auto& [key, d] : *domains) {
    d.customer = c->name;
    if (auto s = txn->put(dbis_.domains, key, encode_domain(d)); !s) return Error{s.error()};
  }
  for (auto& [key, u] : *users) {
    u.customer = c->name;
    if (auto s = txn->put(dbis_.users, key, encode_user(u)); !s) return Error{s.error()};
  }
  if (auto s = txn->put(dbis_.customers, to, encode_customer(*c)); !s) return Error{s.error()};
  if (auto d = txn->del(dbis_.customers, from); !d) return Error{d.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return CustomerChange::kDone;
}

Result<ConfigStore::AddOutcome> ConfigStore::add_domain(const Domain& d, bool create_customer) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto existing = txn->get(dbis_.domains, d.name);
  if (!existing) return Error{existing.error()};
  if (*existing) return AddOutcome::kDomainExists;
  auto owner = txn->get(dbis_.customers, d.customer);
  if (!owner) return Error{owner.error()};
  bool new_customer = !*owner;
  if (new_customer && !create_customer) return AddOutcome::kNoCustomer;
  if (new_customer) {
    if (auto s = txn->put(dbis_.customers, d.customer, encode_customer(Customer{d.customer, d.created_ms})); !s)
      return Error{s.error()};
  }
  if (auto s = txn->put(dbis_.domains, d.name, encode_domain(d)); !s) return Error{s.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return new_customer ? AddOutcome::kAddedWithCustomer : AddOutcome::kAdded;
}

Result<std::optional<Domain>> ConfigStore::domain(std::string_view name) const {
  return get_record<Domain>(env_, dbis_.domains, name, decode_domain);
}
Status ConfigStore::put_domain(const Domain& d) {
  return put_record(env_, dbis_.domains, d.name, encode_domain(d));
}
Result<std::vector<Domain>> ConfigStore::domains() const {
  return all_records<Domain>(env_, dbis_.domains, decode_domain);
}
Result<std::optional<Domain>> ConfigStore::update_domain(std::string_view name,
                                                        const std::function<Status(Domain&)>& change) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto raw = txn->get(dbis_.domains, name);
  if (!raw) return Error{raw.error()};
  if (!*raw) return std::optional<Domain>();
  auto d = decode_domain(**raw);
  if (!d) return Error{d.error()};
  if (auto s = change(*d); !s) return Error{s.error()};
  if (auto s = txn->put(dbis_.domains, name, encode_domain(*d)); !s) return Error{s.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return std::optional<Domain>(std::move(*d));
}

Result<bool> ConfigStore::remove_domain(std::string_view name) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto existed = txn->del(dbis_.domains, name);
  if (!existed) return existed;
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return *existed;
}

namespace {
constexpr char kRecipientSep = '\x1f';
std::string recipient_key(std::string_view domain, std::string_view local) {
  return std::string(domain) + kRecipientSep + to_lower(local);
}
const std::string kRecipientRecord = std::string(1, static_cast<char>(kConfigRecordVersion)) + "{\"kind\":\"mailbox\"}";

// Adds or removes one key in its own write transaction; returns whether it changed.
Result<bool> toggle_key(const Env& env, MDB_dbi dbi, const std::string& key, const std::string* value) {
  auto txn = Txn::begin(env, false);
  if (!txn) return Error{txn.error()};
  Result<bool> changed = false;
  if (value) {
    auto existing = txn->get(dbi, key);
    if (!existing) return Error{existing.error()};
    if (*existing) return false;
    if (auto st = txn->put(dbi, key, *value); !st) return Error{st.error()};
    changed = true;
  } else {
    changed = txn->del(dbi, key);
    if (!changed || !*changed) return changed;
  }
  if (auto st = txn->commit(); !st) return Error{st.error()};
  return changed;
}
}  // namespace

Result<bool> ConfigStore::add_recipient(std::string_view domain, std::string_view local) {
  return toggle_key(env_, dbis_.recipients, recipient_key(domain, local), &kRecipientRecord);
}

Result<bool> ConfigStore::remove_recipient(std::string_view domain, std::string_view local) {
  return toggle_key(env_, dbis_.recipients, recipient_key(domain, local), nullptr);
}

Result<std::vector<std::string>> ConfigStore::recipients(std::string_view domain) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  std::string prefix = std::string(domain) + kRecipientSep;
  std::vector<std::string> out;
  Cursor cur(*txn, dbis_.recipients);
  for (bool ok = cur.seek(prefix); ok && cur.key().substr(0, prefix.size()) == prefix; ok = cur.next())
    out.push_back(std::string(cur.key().substr(prefix.size())) + "@" + std::string(domain));
  return out;
}

Result<size_t> ConfigStore::import_recipients(std::string_view domain, const std::vector<std::string>& locals) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  size_t added = 0;
  for (const auto& local : locals) {
    std::string key = recipient_key(domain, local);
    auto existing = txn->get(dbis_.recipients, key);
    if (!existing) return Error{existing.error()};
    if (*existing) continue;
    if (auto st = txn->put(dbis_.recipients, key, kRecipientRecord); !st) return Error{st.error()};
    ++added;
  }
  if (auto st = txn->commit(); !st) return Error{st.error()};
  return added;
}

Result<bool> ConfigStore::add_list_entry(const ListEntry& e) {
  std::string value = encode_list_entry(e);
  return toggle_key(env_, dbis_.lists, list_key(e.scope, e.action, e.kind, e.value), &value);
}

Result<bool> ConfigStore::remove_list_entry(const ListEntry& e) {
  return toggle_key(env_, dbis_.lists, list_key(e.scope, e.action, e.kind, e.value), nullptr);
}

Result<std::vector<ListEntry>> ConfigStore::list_entries(std::string_view scope, bool all) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  std::string prefix = all ? std::string() : std::string(scope) + '\x1f';
  std::vector<ListEntry> out;
  Cursor cur(*txn, dbis_.lists);
  for (bool ok = cur.seek(prefix); ok && cur.key().substr(0, prefix.size()) == prefix; ok = cur.next()) {
    auto e = decode_list_entry(cur.key(), cur.value());
    if (!e) return Error{e.error()};
    out.push_back(std::move(*e));
  }
  return out;
}

Result<bool> ConfigStore::set_user_password(std::string_view name, std::string_view password_hash) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto raw = txn->get(dbis_.users, name);
  if (!raw) return Error{raw.error()};
  if (!*raw) return false;
  auto u = decode_user(**raw);
  if (!u) return Error{u.error()};
  u->password_hash = std::string(password_hash);
  if (auto s = txn->put(dbis_.users, name, encode_user(*u)); !s) return Error{s.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return true;
}

Result<bool> ConfigStore::set_user_digest(std::string_view name, bool on) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto raw = txn->get(dbis_.users, name);
  if (!raw) return Error{raw.error()};
  if (!*raw) return false;
  auto u = decode_user(**raw);
  if (!u) return Error{u.error()};
  u->digest = on;
  if (auto s = txn->put(dbis_.users, name, encode_user(*u)); !s) return Error{s.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return true;
}

Result<bool> ConfigStore::set_user_settings(std::string_view name, std::optional<bool> digest,
                                            const std::optional<std::vector<std::string>>& shadows) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto raw = txn->get(dbis_.users, name);
  if (!raw) return Error{raw.error()};
  if (!*raw) return false;
  auto u = decode_user(**raw);
  if (!u) return Error{u.error()};
  if (digest) u->digest = *digest;
  if (shadows) u->shadows = *shadows;
  if (auto s = txn->put(dbis_.users, name, encode_user(*u)); !s) return Error{s.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return true;
}

Result<bool> ConfigStore::add_user(const User& u) {
  std::string value = encode_user(u);
  return toggle_key(env_, dbis_.users, u.name, &value);
}

Result<std::optional<User>> ConfigStore::user(std::string_view name) const {
  return get_record<User>(env_, dbis_.users, name, decode_user);
}

Result<std::vector<User>> ConfigStore::users() const { return all_records<User>(env_, dbis_.users, decode_user); }

Result<bool> ConfigStore::remove_user(std::string_view name) {
  return toggle_key(env_, dbis_.users, std::string(name), nullptr);
}

Status ConfigStore::append_audit(const AuditEntry& e) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  // Key: the time, then a sequence number, big-endian, so the log sorts by time.
  uint64_t seq = 0;
  {
    Cursor cur(*txn, dbis_.audit);
    MDB_val k, v;
    if (mdb_cursor_get(cur.get(), &k, &v, MDB_LAST) == 0 && k.mv_size == 16) {
      const auto* p = static_cast<const unsigned char*>(k.mv_data);
      for (int i = 8; i < 16; ++i) seq = (seq << 8) | p[i];
      ++seq;
    }
  }
  std::string key(16, '\0');
  for (int i = 0; i < 8; ++i) key[i] = static_cast<char>((static_cast<uint64_t>(e.time_ms) >> (56 - 8 * i)) & 0xff);
  for (int i = 0; i < 8; ++i) key[8 + i] = static_cast<char>((seq >> (56 - 8 * i)) & 0xff);
  if (auto st = txn->put(dbis_.audit, key, encode_audit(e), MDB_NOOVERWRITE); !st) return st;
  return txn->commit();
}

Result<std::vector<AuditEntry>> ConfigStore::audit() const {
  return all_records<AuditEntry>(env_, dbis_.audit, decode_audit);
}

ConfigReader::ConfigReader(const ConfigStore& store) : store_(store) {}

ConfigReader::~ConfigReader() {
  if (txn_) mdb_txn_abort(txn_);
}

MDB_txn* ConfigReader::begin() {
  int rc = txn_ ? mdb_txn_renew(txn_) : mdb_txn_begin(store_.env().get(), nullptr, MDB_RDONLY, &txn_);
  if (rc && txn_) {
    mdb_txn_abort(txn_);
    txn_ = nullptr;
  }
  return rc ? nullptr : txn_;
}

// The record's bytes are compared, not a transaction id: a console write to
// any other record does not throw the decoded domains away.
Result<const Domain*> ConfigReader::decoded(std::string_view name, std::string_view bytes) {
  constexpr size_t kMaxCached = 4096;  // then start over; a miss costs one parse
  if (auto it = domains_.find(name); it != domains_.end() && it->second.bytes == bytes)
    return &it->second.domain;
  auto d = decode_domain(bytes);
  if (!d) return Error{d.error()};
  if (domains_.size() >= kMaxCached) domains_.clear();
  CachedDomain& c = domains_[std::string(name)];
  c.bytes.assign(bytes);
  c.domain = std::move(*d);
  return &c.domain;
}

namespace {
bool has_key(MDB_txn* txn, MDB_dbi dbi, const std::string& key) {
  MDB_val k = to_val(key), v;
  return mdb_get(txn, dbi, &k, &v) == 0;
}

// Whether any entry of (scope, action) matches the sender (or "*@" its
// domain), its domain (or a parent domain, or "*." a strict parent) or the
// client address: one key lookup per candidate of sender_match_values().
bool list_matches(MDB_txn* txn, MDB_dbi dbi, std::string_view scope, ListAction action, const PolicyQuery& q) {
  for (ListKind kind : {ListKind::kSender, ListKind::kSenderDomain})
    for (const auto& value : sender_match_values(kind, q.sender, q.sender_domain))
      if (has_key(txn, dbi, list_key(scope, action, kind, value))) return true;
  if (q.client) {
    std::string prefix = list_prefix(scope, action, ListKind::kClientIp);
    MDB_cursor* cur;
    if (mdb_cursor_open(txn, dbi, &cur) != 0) return false;
    MDB_val k = to_val(prefix), v;
    bool found = false;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && !found;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      std::string_view key = from_val(k);
      if (key.substr(0, prefix.size()) != prefix) break;
      auto cidr = Cidr::parse(key.substr(prefix.size()));
      found = cidr && cidr->contains(*q.client);
    }
    mdb_cursor_close(cur);
    if (found) return true;
  }
  return false;
}

// Block wins over allow within a scope; the domain's own lists over the global ones.
ListVerdict scope_verdict(MDB_txn* txn, MDB_dbi dbi, std::string_view scope, const PolicyQuery& q) {
  if (list_matches(txn, dbi, scope, ListAction::kBlock, q)) return ListVerdict::kBlock;
  if (list_matches(txn, dbi, scope, ListAction::kAllow, q)) return ListVerdict::kAllow;
  return ListVerdict::kNone;
}
}  // namespace

Result<RcptPolicy> ConfigReader::rcpt_policy(const PolicyQuery& q) {
  MDB_txn* txn = begin();
  if (!txn) return Error{"cannot begin config read transaction"};
  RcptPolicy p;
  MDB_val k = to_val(q.rcpt_domain), v;
  int rc = mdb_get(txn, store_.domains_dbi(), &k, &v);
  if (rc == 0) {
    auto d = decoded(q.rcpt_domain, from_val(v));
    if (!d) {
      mdb_txn_reset(txn);
      return Error{d.error()};
    }
    p.domain_found = true;
    p.status = static_cast<uint8_t>((*d)->status);
    p.list_mode = (*d)->recipients_mode == "list";
    p.callout_mode = (*d)->recipients_mode == "callout";
    // Only the local part is cut: a delimiter character in the domain means nothing.
    auto base = base_local_part(q.rcpt_local, (*d)->recipient_delimiter);
    if (base) p.base_local = std::string(*base);
    if (p.list_mode) {
      p.recipient_known = has_key(txn, store_.recipients_dbi(), recipient_key(q.rcpt_domain, q.rcpt_local));
      if (!p.recipient_known && base)
        p.recipient_known = has_key(txn, store_.recipients_dbi(), recipient_key(q.rcpt_domain, *base));
    }
    p.lists = scope_verdict(txn, store_.lists_dbi(), q.rcpt_domain, q);
    if (p.lists == ListVerdict::kNone) p.lists = scope_verdict(txn, store_.lists_dbi(), "", q);
  } else if (rc != MDB_NOTFOUND) {
    mdb_txn_reset(txn);
    return Error{lmdb_error("config lookup", rc)};
  }
  mdb_txn_reset(txn);
  return p;
}

Result<ListVerdict> ConfigReader::global_policy(const PolicyQuery& q) {
  MDB_txn* txn = begin();
  if (!txn) return Error{"cannot begin config read transaction"};
  ListVerdict v = scope_verdict(txn, store_.lists_dbi(), "", q);
  mdb_txn_reset(txn);
  return v;
}

// The oldest rather than the first by name: a customer who adds a domain that
// sorts before the operator's must not receive the gateway's postmaster mail.
// A record that does not decode is skipped, so one bad record cannot leave
// postmaster mail with nowhere to go.
Result<std::optional<std::string>> ConfigReader::oldest_active_domain() {
  MDB_txn* txn = begin();
  if (!txn) return Error{"cannot begin config read transaction"};
  size_t id = mdb_txn_id(txn);
  if (oldest_active_ && oldest_active_->txn_id == id) {
    mdb_txn_reset(txn);
    return oldest_active_->name;
  }
  MDB_cursor* cur;
  if (int rc = mdb_cursor_open(txn, store_.domains_dbi(), &cur); rc != 0) {
    mdb_txn_reset(txn);
    return Error{lmdb_error("config domains", rc)};
  }
  std::optional<std::string> best;
  int64_t best_created = 0;
  MDB_val k, v;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    auto d = decoded(from_val(k), from_val(v));
    if (!d || (*d)->status != DomainStatus::kActive) continue;
    // Keys come in name order, so on equal times the first seen wins.
    if (!best || (*d)->created_ms < best_created) {
      best = (*d)->name;
      best_created = (*d)->created_ms;
    }
  }
  mdb_cursor_close(cur);
  mdb_txn_reset(txn);
  if (rc != MDB_NOTFOUND) return Error{lmdb_error("config domains", rc)};
  oldest_active_ = OldestActive{id, best};
  return best;
}

Result<std::optional<Domain>> ConfigReader::domain(std::string_view name) {
  if (!begin()) return Error{"cannot begin config read transaction"};
  int rc;
  MDB_val k = to_val(name), v;
  rc = mdb_get(txn_, store_.domains_dbi(), &k, &v);
  Result<std::optional<Domain>> out = std::optional<Domain>();
  if (rc == 0) {
    auto d = decoded(name, from_val(v));
    if (d) out = std::optional<Domain>(**d);
    else out = Error{d.error()};
  } else if (rc != MDB_NOTFOUND) {
    out = Error{lmdb_error("config lookup", rc)};
  }
  mdb_txn_reset(txn_);
  return out;
}

}  // namespace mxguard::store

namespace mxguard::store {

namespace {

constexpr uint8_t kBundleRecordVersion = 1;
constexpr std::string_view kActiveBundleKey = "active_bundle";
// The bundles that were active before the current one, most recent last (8
// bytes each): a rollback goes back one activation, not to whatever bundle
// happens to have the next lower number.
constexpr std::string_view kBundleHistoryKey = "bundle_history";
constexpr size_t kBundleHistoryMax = 64;
constexpr std::string_view kTrustedKeyPrefix = "trusted_key:";
constexpr std::string_view kLocalRulesGenerationKey = "local_rules_generation";

int64_t now_ms_since_epoch() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Bundle keys are big-endian sequence numbers, so a cursor walks them in order.
std::string seq_key(uint64_t seq) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i) {
    k[i] = static_cast<char>(seq & 0xff);
    seq >>= 8;
  }
  return k;
}

uint64_t key_seq(std::string_view k) {
  uint64_t v = 0;
  for (char c : k.substr(0, 8)) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

struct BundleValue {
  std::string_view meta;
  std::string_view file;
};

std::optional<BundleValue> split_bundle_value(std::string_view v) {
  if (v.size() < 5 || static_cast<uint8_t>(v[0]) != kBundleRecordVersion) return std::nullopt;
  uint32_t len = 0;
  for (int i = 1; i <= 4; ++i) len = (len << 8) | static_cast<uint8_t>(v[i]);  // big-endian
  if (v.size() - 5 < len) return std::nullopt;
  return BundleValue{v.substr(5, len), v.substr(5 + len)};
}

std::optional<uint64_t> active_in(const Txn& txn, MDB_dbi settings) {
  auto v = txn.get(settings, kActiveBundleKey);
  if (!v || !*v || (*v)->size() != 8) return std::nullopt;
  return key_seq(**v);
}

// nullopt: the store has never kept a history (made before it was kept).
std::optional<std::vector<uint64_t>> history_in(const Txn& txn, MDB_dbi settings) {
  auto v = txn.get(settings, kBundleHistoryKey);
  if (!v || !*v) return std::nullopt;
  std::vector<uint64_t> out;
  std::string_view h = **v;
  for (size_t i = 0; i + 8 <= h.size(); i += 8) out.push_back(key_seq(h.substr(i, 8)));
  return out;
}

Status put_history(Txn& txn, MDB_dbi settings, const std::vector<uint64_t>& history) {
  std::string v;
  size_t from = history.size() > kBundleHistoryMax ? history.size() - kBundleHistoryMax : 0;
  for (size_t i = from; i < history.size(); ++i) v += seq_key(history[i]);
  return txn.put(settings, kBundleHistoryKey, v);
}

// What a rollback goes back to, and the history left after it: the most
// recent earlier activation whose bundle is still stored (the active one
// itself is skipped: push, rollback, rollback must not stay put). Only a
// store with no history at all (made before it was kept) goes to the newest
// older bundle; a used-up history means there is nothing to go back to.
struct RollbackPlan {
  std::optional<uint64_t> target;
  std::vector<uint64_t> history;
};

RollbackPlan plan_rollback(const Txn& txn, MDB_dbi bundles, MDB_dbi settings) {
  RollbackPlan plan;
  auto active = active_in(txn, settings);
  if (!active) return plan;
  auto history = history_in(txn, settings);
  if (history) {
    plan.history = std::move(*history);
    while (!plan.history.empty()) {
      uint64_t seq = plan.history.back();
      plan.history.pop_back();
      auto stored = txn.get(bundles, seq_key(seq));
      if (seq != *active && stored && *stored) {
        plan.target = seq;
        return plan;
      }
    }
    return plan;
  }
  Cursor cur(txn, bundles);
  for (bool ok = cur.seek(""); ok; ok = cur.next()) {
    uint64_t seq = key_seq(cur.key());
    if (seq < *active) plan.target = seq;
  }
  return plan;
}

}  // namespace

Result<ConfigStore::StoredBundle> ConfigStore::store_bundle(std::string_view file, std::string_view meta, size_t keep,
                                                            const std::vector<uint64_t>& never_prune) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  StoredBundle out;
  out.seq = 1;
  std::vector<uint64_t> existing;
  {
    Cursor cur(*txn, dbis_.bundles);
    for (bool ok = cur.seek(""); ok; ok = cur.next()) existing.push_back(key_seq(cur.key()));
  }
  if (!existing.empty()) out.seq = existing.back() + 1;
  std::string value(1, static_cast<char>(kBundleRecordVersion));
  uint32_t len = static_cast<uint32_t>(meta.size());
  for (int i = 0; i < 4; ++i) value += static_cast<char>((len >> (8 * (3 - i))) & 0xff);
  value.append(meta);
  value.append(file);
  if (auto st = txn->put(dbis_.bundles, seq_key(out.seq), value); !st) return Error{st.error()};
  if (auto was = active_in(*txn, dbis_.settings)) {
    auto history = history_in(*txn, dbis_.settings).value_or(std::vector<uint64_t>{});
    history.push_back(*was);
    if (auto st = put_history(*txn, dbis_.settings, history); !st) return Error{st.error()};
  }
  if (auto st = txn->put(dbis_.settings, kActiveBundleKey, seq_key(out.seq)); !st) return Error{st.error()};
  // The new one is active; drop the oldest beyond the newest `keep`, never
  // the new one nor those the caller protects.
  existing.push_back(out.seq);
  size_t newest_from = existing.size() > keep ? existing.size() - keep : 0;
  for (size_t i = 0; i < newest_from; ++i) {
    uint64_t seq = existing[i];
    if (seq == out.seq || std::find(never_prune.begin(), never_prune.end(), seq) != never_prune.end()) continue;
    if (auto d = txn->del(dbis_.bundles, seq_key(seq)); !d) return Error{d.error()};
    out.pruned.push_back(seq);
  }
  if (auto st = txn->commit(); !st) return Error{st.error()};
  return out;
}

Result<uint64_t> ConfigStore::add_bundle(std::string_view file, std::string_view meta, size_t keep) {
  auto stored = store_bundle(file, meta, std::max<size_t>(keep, 1), {});
  if (!stored) return Error{stored.error()};
  return stored->seq;
}

Result<std::vector<ConfigStore::BundleRecord>> ConfigStore::bundles() const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  auto active = active_in(*txn, dbis_.settings);
  std::vector<BundleRecord> out;
  Cursor cur(*txn, dbis_.bundles);
  for (bool ok = cur.seek(""); ok; ok = cur.next()) {
    auto v = split_bundle_value(cur.value());
    if (!v) return Error{"a rule bundle record is corrupt"};
    uint64_t seq = key_seq(cur.key());
    out.push_back({seq, std::string(v->meta), active && *active == seq});
  }
  return out;
}

Result<std::optional<std::string>> ConfigStore::bundle_file(uint64_t seq) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  auto raw = txn->get(dbis_.bundles, seq_key(seq));
  if (!raw) return Error{raw.error()};
  if (!*raw) return std::optional<std::string>{};
  auto v = split_bundle_value(**raw);
  if (!v) return Error{"a rule bundle record is corrupt"};
  return std::optional<std::string>(std::string(v->file));
}

Result<std::optional<uint64_t>> ConfigStore::active_bundle() const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  return active_in(*txn, dbis_.settings);
}

Result<std::optional<uint64_t>> ConfigStore::rollback_target() const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  return plan_rollback(*txn, dbis_.bundles, dbis_.settings).target;
}

Result<std::optional<uint64_t>> ConfigStore::rollback_bundle() {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  RollbackPlan plan = plan_rollback(*txn, dbis_.bundles, dbis_.settings);
  if (!plan.target) return std::optional<uint64_t>{};
  if (auto st = txn->put(dbis_.settings, kActiveBundleKey, seq_key(*plan.target)); !st) return Error{st.error()};
  if (auto st = put_history(*txn, dbis_.settings, plan.history); !st) return Error{st.error()};
  if (auto st = txn->commit(); !st) return Error{st.error()};
  return plan.target;
}

Result<bool> ConfigStore::activate_bundle(uint64_t seq) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto stored = txn->get(dbis_.bundles, seq_key(seq));
  if (!stored) return Error{stored.error()};
  if (!*stored) return false;
  auto was = active_in(*txn, dbis_.settings);
  if (was && *was == seq) return true;
  if (was) {
    auto history = history_in(*txn, dbis_.settings).value_or(std::vector<uint64_t>{});
    history.push_back(*was);
    if (auto st = put_history(*txn, dbis_.settings, history); !st) return Error{st.error()};
  }
  if (auto st = txn->put(dbis_.settings, kActiveBundleKey, seq_key(seq)); !st) return Error{st.error()};
  if (auto st = txn->commit(); !st) return Error{st.error()};
  return true;
}

Result<uint64_t> ConfigStore::local_rules_generation() const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  auto v = txn->get(dbis_.settings, kLocalRulesGenerationKey);
  if (!v) return Error{v.error()};
  if (!*v || (*v)->size() != 8) return uint64_t{0};
  return key_seq(**v);
}

Result<uint64_t> ConfigStore::bump_local_rules_generation() {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto v = txn->get(dbis_.settings, kLocalRulesGenerationKey);
  if (!v) return Error{v.error()};
  uint64_t gen = (*v && (*v)->size() == 8 ? key_seq(**v) : 0) + 1;
  if (auto st = txn->put(dbis_.settings, kLocalRulesGenerationKey, seq_key(gen)); !st) return Error{st.error()};
  if (auto st = txn->commit(); !st) return Error{st.error()};
  return gen;
}

// A trusted key's value: the base64 key, then (since keys record it) a
// blank and the time it was added in ms.
Result<bool> ConfigStore::add_trusted_key(std::string_view name, std::string_view key) {
  std::string value = fmt::format("{} {}", key, now_ms_since_epoch());
  return toggle_key(env_, dbis_.settings, std::string(kTrustedKeyPrefix) + std::string(name), &value);
}

Result<bool> ConfigStore::remove_trusted_key(std::string_view name) {
  return toggle_key(env_, dbis_.settings, std::string(kTrustedKeyPrefix) + std::string(name), nullptr);
}

Result<std::vector<std::pair<std::string, std::string>>> ConfigStore::trusted_keys() const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  std::vector<std::pair<std::string, std::string>> out;
  auto records = trusted_key_records();
  if (!records) return Error{records.error()};
  for (auto& r : *records) out.emplace_back(std::move(r.name), std::move(r.key));
  return out;
}

Result<std::vector<ConfigStore::TrustedKey>> ConfigStore::trusted_key_records() const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  std::vector<TrustedKey> out;
  Cursor cur(*txn, dbis_.settings);
  for (bool ok = cur.seek(kTrustedKeyPrefix); ok && cur.key().starts_with(kTrustedKeyPrefix); ok = cur.next()) {
    TrustedKey k;
    k.name = std::string(cur.key().substr(kTrustedKeyPrefix.size()));
    std::string_view v = cur.value();
    size_t sp = v.find(' ');
    k.key = std::string(v.substr(0, sp));
    if (sp != std::string_view::npos) {
      std::string_view ms = v.substr(sp + 1);
      std::from_chars(ms.data(), ms.data() + ms.size(), k.added_ms);
    }
    out.push_back(std::move(k));
  }
  return out;
}

// --- Digest link keys and the last digest of each recipient. ---
//   "key:<id>"        a DigestKey as JSON (key bytes in hex)
//   "signing"         the signing key's id
//   "last:<address>"  decimal ms: the end of the period the last digest covered

namespace {
constexpr std::string_view kSigningKey = "signing";

std::string hex_of(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::optional<std::string> bytes_of_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string encode_digest_key(const DigestKey& k) {
  return with_version(json{{"id", k.id},
                           {"public_key", hex_of(k.public_key)},
                           {"secret_key", hex_of(k.secret_key)},
                           {"created_ms", k.created_ms},
                           {"retired_ms", k.retired_ms}});
}

Result<DigestKey> decode_digest_key(std::string_view bytes) {
  auto j = parse_record(bytes, "digest key");
  if (!j) return Error{j.error()};
  try {
    DigestKey k;
    k.id = j->at("id").get<std::string>();
    auto pub = bytes_of_hex(j->at("public_key").get<std::string>());
    auto sec = bytes_of_hex(j->at("secret_key").get<std::string>());
    if (!pub || !sec || pub->size() != 32 || sec->size() != 64) return Error{"digest key record is corrupt"};
    k.public_key = std::move(*pub);
    k.secret_key = std::move(*sec);
    k.created_ms = j->value("created_ms", int64_t{0});
    k.retired_ms = j->value("retired_ms", int64_t{0});
    return k;
  } catch (const json::exception& e) {
    return Error{fmt::format("digest key record is corrupt: {}", e.what())};
  }
}

std::string digest_key_key(std::string_view id) { return "key:" + std::string(id); }

Result<std::optional<DigestKey>> digest_key_in(const Txn& txn, MDB_dbi dbi, std::string_view id) {
  auto raw = txn.get(dbi, digest_key_key(id));
  if (!raw) return Error{raw.error()};
  if (!*raw) return std::optional<DigestKey>();
  auto k = decode_digest_key(**raw);
  if (!k) return Error{k.error()};
  return std::optional<DigestKey>(std::move(*k));
}

Result<std::optional<DigestKey>> signing_key_in(const Txn& txn, MDB_dbi dbi) {
  auto id = txn.get(dbi, kSigningKey);
  if (!id) return Error{id.error()};
  if (!*id) return std::optional<DigestKey>();
  auto k = digest_key_in(txn, dbi, **id);
  if (!k) return Error{k.error()};
  if (!*k) return Error{fmt::format("the digest signing key {} is missing", **id)};
  return k;
}

Status check_new_digest_key(const DigestKey& k) {
  if (k.id.empty() || k.public_key.size() != 32 || k.secret_key.size() != 64)
    return Error{"digest key: bad id or key size"};
  return {};
}
}  // namespace

Result<std::optional<DigestKey>> ConfigStore::digest_signing_key() const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  return signing_key_in(*txn, dbis_.digest);
}

Result<std::optional<DigestKey>> ConfigStore::digest_key(std::string_view id) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  return digest_key_in(*txn, dbis_.digest, id);
}

Result<std::vector<DigestKey>> ConfigStore::digest_keys() const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  std::vector<DigestKey> out;
  Cursor cur(*txn, dbis_.digest);
  for (bool ok = cur.seek("key:"); ok && cur.key().starts_with("key:"); ok = cur.next()) {
    auto k = decode_digest_key(cur.value());
    if (!k) return Error{k.error()};
    out.push_back(std::move(*k));
  }
  return out;
}

Result<DigestKey> ConfigStore::ensure_digest_key(const DigestKey& k) {
  if (auto s = check_new_digest_key(k); !s) return Error{s.error()};
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto current = signing_key_in(*txn, dbis_.digest);
  if (!current) return Error{current.error()};
  if (*current) return std::move(**current);
  DigestKey fresh = k;
  fresh.retired_ms = 0;
  if (auto s = txn->put(dbis_.digest, digest_key_key(k.id), encode_digest_key(fresh), MDB_NOOVERWRITE); !s)
    return Error{s.error()};
  if (auto s = txn->put(dbis_.digest, kSigningKey, k.id); !s) return Error{s.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return fresh;
}

Result<std::vector<std::string>> ConfigStore::rotate_digest_key(const DigestKey& k, int64_t drop_retired_before_ms) {
  if (auto s = check_new_digest_key(k); !s) return Error{s.error()};
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto current = signing_key_in(*txn, dbis_.digest);
  if (!current) return Error{current.error()};
  if (*current) {
    (*current)->retired_ms = k.created_ms;
    if (auto s = txn->put(dbis_.digest, digest_key_key((*current)->id), encode_digest_key(**current)); !s)
      return Error{s.error()};
  }
  std::vector<std::string> dropped;
  {
    Cursor cur(*txn, dbis_.digest);
    for (bool ok = cur.seek("key:"); ok && cur.key().starts_with("key:"); ok = cur.next()) {
      auto old = decode_digest_key(cur.value());
      if (!old) return Error{old.error()};
      if (old->retired_ms != 0 && old->retired_ms < drop_retired_before_ms) dropped.push_back(old->id);
    }
  }
  for (const auto& id : dropped)
    if (auto d = txn->del(dbis_.digest, digest_key_key(id)); !d) return Error{d.error()};
  DigestKey fresh = k;
  fresh.retired_ms = 0;
  if (auto s = txn->put(dbis_.digest, digest_key_key(k.id), encode_digest_key(fresh), MDB_NOOVERWRITE); !s)
    return Error{fmt::format("digest key {}: {}", k.id, s.error())};
  if (auto s = txn->put(dbis_.digest, kSigningKey, k.id); !s) return Error{s.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return dropped;
}

Result<int64_t> ConfigStore::last_digest(std::string_view recipient) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  auto raw = txn->get(dbis_.digest, "last:" + to_lower(recipient));
  if (!raw) return Error{raw.error()};
  if (!*raw) return int64_t{0};
  int64_t ms = 0;
  auto [end, ec] = std::from_chars((*raw)->data(), (*raw)->data() + (*raw)->size(), ms);
  if (ec != std::errc() || end != (*raw)->data() + (*raw)->size())
    return Error{fmt::format("last digest time of {} is corrupt", recipient)};
  return ms;
}

Status ConfigStore::set_last_digest(std::string_view recipient, int64_t until_ms) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  if (auto s = txn->put(dbis_.digest, "last:" + to_lower(recipient), std::to_string(until_ms)); !s) return s;
  return txn->commit();
}

Result<bool> ConfigStore::digest_link_used(std::string_view link) const {
  auto txn = Txn::begin(env_, true);
  if (!txn) return Error{txn.error()};
  auto seen = txn->get(dbis_.digest, "used:" + std::string(link));
  if (!seen) return Error{seen.error()};
  return seen->has_value();
}

Result<bool> ConfigStore::use_digest_link(std::string_view link, int64_t expires_ms, int64_t now_ms) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  const std::string key = "used:" + std::string(link);
  auto seen = txn->get(dbis_.digest, key);
  if (!seen) return Error{seen.error()};
  if (*seen) return false;
  std::vector<std::string> expired;
  {
    Cursor cur(*txn, dbis_.digest);
    for (bool ok = cur.seek("used:"); ok && cur.key().starts_with("used:"); ok = cur.next()) {
      int64_t until = 0;
      std::string_view v = cur.value();
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), until);
      if (ec != std::errc() || until <= now_ms) expired.emplace_back(cur.key());
    }
  }
  for (const auto& k : expired)
    if (auto d = txn->del(dbis_.digest, k); !d) return Error{d.error()};
  if (auto s = txn->put(dbis_.digest, key, std::to_string(expires_ms)); !s) return Error{s.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return true;
}

}  // namespace mxguard::store
