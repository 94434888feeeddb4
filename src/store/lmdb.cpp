// Thin RAII layer over the LMDB C API; errors become values.
#include "mxguard/store/lmdb.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

namespace mxguard::store {

std::string lmdb_error(std::string_view what, int rc) {
  return fmt::format("{}: {}", what, mdb_strerror(rc));
}

Env::~Env() {
  if (env_) mdb_env_close(env_);
}

namespace {
// root (the operator's console over SSH) opening an env under a state
// directory that belongs to the engine's user gives what it creates to that
// user: a root-owned lock or data file would lock the engine out.
void give_to_state_owner(const std::string& dir) {
  if (::geteuid() != 0) return;
  const size_t slash = dir.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : dir.substr(0, slash);
  struct stat owner {};
  if (::stat(parent.c_str(), &owner) != 0 || owner.st_uid == 0) return;
  for (const std::string& path : {dir, dir + "/data.mdb", dir + "/lock.mdb"}) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && st.st_uid == 0 && ::lchown(path.c_str(), owner.st_uid, owner.st_gid) != 0) {
      // Left to root; the engine will say it cannot open the env.
    }
  }
}
}  // namespace

Result<Env> Env::open(const std::string& dir, unsigned max_dbs, size_t map_size, unsigned flags) {
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST)
    return Error{fmt::format("cannot create {}: {}", dir, std::strerror(errno))};
  Env env;
  int rc = mdb_env_create(&env.env_);
  if (rc) return Error{lmdb_error("mdb_env_create", rc)};
  mdb_env_set_maxdbs(env.env_, max_dbs);
  mdb_env_set_mapsize(env.env_, map_size);
  mdb_env_set_maxreaders(env.env_, 1024);
  rc = mdb_env_open(env.env_, dir.c_str(), flags | MDB_NOTLS, 0640);
  if (rc) return Error{lmdb_error(fmt::format("cannot open LMDB environment {}", dir), rc)};
  give_to_state_owner(dir);
  return env;
}

Result<MDB_dbi> Env::open_db(const char* name, unsigned flags) {
  MDB_txn* txn;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc) return Error{lmdb_error("mdb_txn_begin", rc)};
  MDB_dbi dbi;
  rc = mdb_dbi_open(txn, name, flags, &dbi);
  if (rc) {
    mdb_txn_abort(txn);
    return Error{lmdb_error(fmt::format("mdb_dbi_open {}", name), rc)};
  }
  rc = mdb_txn_commit(txn);
  if (rc) return Error{lmdb_error("mdb_txn_commit", rc)};
  return dbi;
}

Result<Txn> Txn::begin(const Env& env, bool read_only) {
  Txn t;
  int rc = mdb_txn_begin(env.get(), nullptr, read_only ? MDB_RDONLY : 0, &t.txn_);
  if (rc) return Error{lmdb_error("mdb_txn_begin", rc)};
  return t;
}

Status Txn::commit() {
  int rc = mdb_txn_commit(txn_);
  txn_ = nullptr;
  if (rc) return Error{lmdb_error("mdb_txn_commit", rc)};
  return {};
}

void Txn::abort() {
  if (txn_) mdb_txn_abort(txn_);
  txn_ = nullptr;
}

Result<std::optional<std::string_view>> Txn::get(MDB_dbi dbi, std::string_view key) const {
  MDB_val k = to_val(key), v;
  int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>();
  if (rc) return Error{lmdb_error("mdb_get", rc)};
  return std::optional<std::string_view>(from_val(v));
}

Status Txn::put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = to_val(key), v = to_val(value);
  int rc = mdb_put(txn_, dbi, &k, &v, flags);
  if (rc) return Error{lmdb_error("mdb_put", rc)};
  return {};
}

Result<bool> Txn::del(MDB_dbi dbi, std::string_view key) {
  MDB_val k = to_val(key);
  int rc = mdb_del(txn_, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc) return Error{lmdb_error("mdb_del", rc)};
  return true;
}

Cursor::Cursor(const Txn& txn, MDB_dbi dbi) {
  if (mdb_cursor_open(txn.get(), dbi, &cur_) != 0) cur_ = nullptr;
}

Cursor::~Cursor() {
  if (cur_) mdb_cursor_close(cur_);
}

bool Cursor::seek(std::string_view key) {
  if (!cur_) return valid_ = false;
  if (key.empty()) {
    valid_ = mdb_cursor_get(cur_, &k_, &v_, MDB_FIRST) == 0;
  } else {
    k_ = to_val(key);
    valid_ = mdb_cursor_get(cur_, &k_, &v_, MDB_SET_RANGE) == 0;
  }
  return valid_;
}

bool Cursor::next() {
  if (!cur_ || !valid_) return false;
  valid_ = mdb_cursor_get(cur_, &k_, &v_, MDB_NEXT) == 0;
  return valid_;
}

bool Cursor::prev() {
  if (!cur_ || !valid_) return false;
  valid_ = mdb_cursor_get(cur_, &k_, &v_, MDB_PREV) == 0;
  return valid_;
}

bool Cursor::last() {
  if (!cur_) return valid_ = false;
  valid_ = mdb_cursor_get(cur_, &k_, &v_, MDB_LAST) == 0;
  return valid_;
}

}  // namespace mxguard::store
