// Config environment records (version byte + JSON) and their accessors.
#include "mxguard/store/config_store.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

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
                           {"tls", d.tls_policy},
                           {"trust", d.trust},
                           {"auth_user", d.auth_user},
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
    d.tls_policy = j->value("tls", "may");
    d.trust = j->value("trust", "ip");
    d.auth_user = j->value("auth_user", "");
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
  return std::unique_ptr<ConfigStore>(new ConfigStore(std::move(*env), *customers, *domains));
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
  return get_record<Customer>(env_, customers_, name, decode_customer);
}
Status ConfigStore::put_customer(const Customer& c) {
  return put_record(env_, customers_, c.name, encode_customer(c));
}
Result<std::vector<Customer>> ConfigStore::customers() const {
  return all_records<Customer>(env_, customers_, decode_customer);
}
Result<bool> ConfigStore::add_customer(const Customer& c) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto existing = txn->get(customers_, c.name);
  if (!existing) return Error{existing.error()};
  if (*existing) return false;
  if (auto s = txn->put(customers_, c.name, encode_customer(c)); !s) return Error{s.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return true;
}

Result<ConfigStore::AddOutcome> ConfigStore::add_domain(const Domain& d, bool create_customer) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto existing = txn->get(domains_, d.name);
  if (!existing) return Error{existing.error()};
  if (*existing) return AddOutcome::kDomainExists;
  auto owner = txn->get(customers_, d.customer);
  if (!owner) return Error{owner.error()};
  bool new_customer = !*owner;
  if (new_customer && !create_customer) return AddOutcome::kNoCustomer;
  if (new_customer) {
    if (auto s = txn->put(customers_, d.customer, encode_customer(Customer{d.customer, d.created_ms})); !s)
      return Error{s.error()};
  }
  if (auto s = txn->put(domains_, d.name, encode_domain(d)); !s) return Error{s.error()};
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return new_customer ? AddOutcome::kAddedWithCustomer : AddOutcome::kAdded;
}

Result<std::optional<Domain>> ConfigStore::domain(std::string_view name) const {
  return get_record<Domain>(env_, domains_, name, decode_domain);
}
Status ConfigStore::put_domain(const Domain& d) {
  return put_record(env_, domains_, d.name, encode_domain(d));
}
Result<std::vector<Domain>> ConfigStore::domains() const {
  return all_records<Domain>(env_, domains_, decode_domain);
}
Result<bool> ConfigStore::remove_domain(std::string_view name) {
  auto txn = Txn::begin(env_, false);
  if (!txn) return Error{txn.error()};
  auto existed = txn->del(domains_, name);
  if (!existed) return existed;
  if (auto s = txn->commit(); !s) return Error{s.error()};
  return *existed;
}

ConfigReader::ConfigReader(const ConfigStore& store) : store_(store) {}

ConfigReader::~ConfigReader() {
  if (txn_) mdb_txn_abort(txn_);
}

Result<std::optional<Domain>> ConfigReader::domain(std::string_view name) {
  int rc = txn_ ? mdb_txn_renew(txn_) : mdb_txn_begin(store_.env().get(), nullptr, MDB_RDONLY, &txn_);
  if (rc) {
    if (txn_) {
      mdb_txn_abort(txn_);
      txn_ = nullptr;
    }
    return Error{lmdb_error("config read transaction", rc)};
  }
  MDB_val k = to_val(name), v;
  rc = mdb_get(txn_, store_.domains_dbi(), &k, &v);
  Result<std::optional<Domain>> out = std::optional<Domain>();
  if (rc == 0) {
    auto d = decode_domain(from_val(v));
    if (d) out = std::optional<Domain>(std::move(*d));
    else out = Error{d.error()};
  } else if (rc != MDB_NOTFOUND) {
    out = Error{lmdb_error("config lookup", rc)};
  }
  mdb_txn_reset(txn_);
  return out;
}

}  // namespace mxguard::store
