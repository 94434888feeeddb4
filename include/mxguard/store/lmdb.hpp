// RAII wrappers for LMDB environments, transactions and cursors.
#pragma once

#include <lmdb.h>

#include <optional>
#include <string>
#include <string_view>

#include "mxguard/core/result.hpp"

namespace mxguard::store {

std::string lmdb_error(std::string_view what, int rc);

inline MDB_val to_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view from_val(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

class Env {
 public:
  Env() = default;
  ~Env();
  Env(Env&& o) noexcept : env_(o.env_) { o.env_ = nullptr; }
  Env& operator=(Env&&) = delete;
  Env(const Env&) = delete;

  // Opens (creating the directory if needed) an environment with default,
  // fully synchronous commits: a returned commit is on disk.
  static Result<Env> open(const std::string& dir, unsigned max_dbs, size_t map_size, unsigned flags = 0);
  MDB_env* get() const { return env_; }
  Result<MDB_dbi> open_db(const char* name, unsigned flags = MDB_CREATE);

 private:
  MDB_env* env_ = nullptr;
};

class Txn {
 public:
  Txn() = default;
  ~Txn() { abort(); }
  Txn(Txn&& o) noexcept : txn_(o.txn_) { o.txn_ = nullptr; }
  Txn& operator=(Txn&& o) noexcept {
    abort();
    txn_ = o.txn_;
    o.txn_ = nullptr;
    return *this;
  }
  Txn(const Txn&) = delete;

  static Result<Txn> begin(const Env& env, bool read_only);
  MDB_txn* get() const { return txn_; }
  Status commit();
  void abort();

  // Returns the value (valid until the transaction ends), nullopt when absent.
  Result<std::optional<std::string_view>> get(MDB_dbi dbi, std::string_view key) const;
  Status put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
  // Deletes; absent keys are not an error. Returns whether it existed.
  Result<bool> del(MDB_dbi dbi, std::string_view key);

 private:
  MDB_txn* txn_ = nullptr;
};

class Cursor {
 public:
  Cursor(const Txn& txn, MDB_dbi dbi);
  ~Cursor();
  Cursor(const Cursor&) = delete;
  // Positions at the first key >= `key` (or the first key when empty).
  bool seek(std::string_view key);
  bool next();
  // Steps back to the previous key; last() positions at the last key.
  bool prev();
  bool last();
  std::string_view key() const { return from_val(k_); }
  std::string_view value() const { return from_val(v_); }
  bool valid() const { return valid_; }
  MDB_cursor* get() const { return cur_; }

 private:
  MDB_cursor* cur_ = nullptr;
  MDB_val k_{}, v_{};
  bool valid_ = false;
};

}  // namespace mxguard::store
