// Bayes model: token counts, message totals and learned-message classes in
// the LMDB env state_dir/bayes, shared by every shard (readers) and the console.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <mutex>

#include "codec.hpp"
#include "combine.hpp"
#include "mxguard/bayes/bayes.hpp"
#include "mxguard/store/lmdb.hpp"

namespace mxguard::bayes {

namespace {
// Address space, not disk: the file grows with the model. A million tokens
// take about 90 MB, so 4 GiB leaves room for any realistic training.
constexpr size_t kMapSize = size_t{4} << 30;
constexpr std::string_view kTotalsKey = "messages";
// Longer message keys are hashed: LMDB keys are at most 511 bytes.
constexpr size_t kMaxMessageKey = 200;

// The open env and its sub-databases. LMDB forbids opening one env twice in
// a process, so every Model of a process on the same directory shares this.
struct SharedEnv {
  std::string path;  // resolved directory: the registry key
  store::Env env;
  bool read_only = false;
  MDB_dbi tokens = 0;   // token hash (native uint64) -> Counts (messages containing it)
  MDB_dbi totals = 0;   // "messages" -> Counts (messages learned)
  MDB_dbi learned = 0;  // message key -> class, so re-learning moves a message
};

std::mutex& registry_mutex() {
  static auto* mu = new std::mutex;  // leaked: Models may outlive static destruction order
  return *mu;
}
std::map<std::string, std::weak_ptr<SharedEnv>>& registry() {
  static auto* envs = new std::map<std::string, std::weak_ptr<SharedEnv>>;
  return *envs;
}

// Opens the three sub-databases: in a read transaction when they exist (a
// shard opening the model never waits for the writer lock), in a write
// transaction creating them otherwise.
Status open_dbis(SharedEnv& s) {
  {
    auto txn = store::Txn::begin(s.env, true);
    if (!txn) return Error{txn.error()};
    int rc = mdb_dbi_open(txn->get(), "tokens", MDB_INTEGERKEY, &s.tokens);
    if (rc == 0) rc = mdb_dbi_open(txn->get(), "totals", 0, &s.totals);
    if (rc == 0) rc = mdb_dbi_open(txn->get(), "learned", 0, &s.learned);
    if (rc == 0) return txn->commit();  // commit keeps the handles for the env
    if (rc != MDB_NOTFOUND) return Error{store::lmdb_error("mdb_dbi_open", rc)};
  }
  if (s.read_only) return Error{"the Bayes model has not been created yet (no write access to create it)"};
  auto txn = store::Txn::begin(s.env, false);
  if (!txn) return Error{txn.error()};
  int rc = mdb_dbi_open(txn->get(), "tokens", MDB_CREATE | MDB_INTEGERKEY, &s.tokens);
  if (rc == 0) rc = mdb_dbi_open(txn->get(), "totals", MDB_CREATE, &s.totals);
  if (rc == 0) rc = mdb_dbi_open(txn->get(), "learned", MDB_CREATE, &s.learned);
  if (rc != 0) return Error{store::lmdb_error("mdb_dbi_open", rc)};
  return txn->commit();
}

Result<std::shared_ptr<SharedEnv>> open_shared(const std::string& state_dir) {
  if (::mkdir(state_dir.c_str(), 0750) != 0 && errno != EEXIST)
    return Error{fmt::format("cannot create state directory {}: {}", state_dir, std::strerror(errno))};
  std::string dir = Model::dir_for(state_dir);
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST)
    return Error{fmt::format("cannot create {}: {}", dir, std::strerror(errno))};
  char real[PATH_MAX];
  if (!::realpath(dir.c_str(), real)) return Error{fmt::format("cannot resolve {}: {}", dir, std::strerror(errno))};

  std::lock_guard lock(registry_mutex());
  if (auto it = registry().find(real); it != registry().end())
    if (auto existing = it->second.lock()) return existing;
  // Without write access (an unprivileged reader) the env can still be read.
  bool read_only = ::access(real, W_OK) != 0;
  auto env = store::Env::open(real, 4, kMapSize, read_only ? MDB_RDONLY : 0);
  if (!env) return Error{env.error()};
  // Reader slots left by a crashed process would pin old pages and make the
  // file grow; clearing them is cheap and safe at open.
  int dead = 0;
  mdb_reader_check(env->get(), &dead);
  auto fresh = std::unique_ptr<SharedEnv>(new SharedEnv{real, std::move(*env), read_only});
  if (auto st = open_dbis(*fresh); !st) return Error{st.error()};
  // The env closes under the registry lock, so a concurrent open of the same
  // directory cannot overlap a close (closing drops the process's LMDB locks).
  std::shared_ptr<SharedEnv> shared(fresh.release(), [](SharedEnv* p) {
    std::lock_guard relock(registry_mutex());
    auto it = registry().find(p->path);
    if (it != registry().end() && it->second.expired()) registry().erase(it);
    delete p;
  });
  registry()[real] = shared;
  return shared;
}

std::string message_db_key(std::string_view key) {
  if (key.size() <= kMaxMessageKey) return std::string(key);
  std::string salted = "\x01";
  salted += key;
  return fmt::format("#{:016x}{:016x}", token_hash(key), token_hash(salted));
}

Result<codec::Counts> read_totals(const store::Txn& txn, MDB_dbi dbi) {
  auto raw = txn.get(dbi, kTotalsKey);
  if (!raw) return Error{raw.error()};
  if (!*raw) return codec::Counts{};
  auto c = codec::decode_counts(**raw);
  if (!c) return Error{"Bayes totals record has an unsupported version or is corrupt"};
  return *c;
}

// The key bytes of a token hash; `h` must outlive the view (and is aligned,
// as MDB_INTEGERKEY comparisons expect).
std::string_view key_view(const uint64_t& h) { return {reinterpret_cast<const char*>(&h), sizeof h}; }

uint64_t add_clamped(uint64_t v, int64_t d) {
  if (d < 0 && static_cast<uint64_t>(-d) > v) return 0;  // a token set drifted since it was learned
  return v + static_cast<uint64_t>(d);
}

struct Delta {
  uint64_t hash;
  int32_t spam;
  int32_t ham;
};

struct LearnRef {
  std::string_view key;
  const std::vector<uint64_t>* tokens;
  bool spam;
};
}  // namespace

struct Model::Impl {
  std::shared_ptr<SharedEnv> shared;
  ModelParams params;

  // One write transaction for all items: per message, the learned-messages
  // record decides between add, move and nothing; token changes are summed
  // and applied once per token in key order.
  Status learn(const std::vector<LearnRef>& items) {
    SharedEnv& s = *shared;
    auto txn = store::Txn::begin(s.env, false);
    if (!txn) return Error{txn.error()};
    auto totals = read_totals(*txn, s.totals);
    if (!totals) return Error{totals.error()};
    std::vector<Delta> deltas;
    bool changed = false;
    std::vector<uint64_t> tokens;
    for (const LearnRef& item : items) {
      if (item.key.empty()) return Error{"Bayes learn: empty message key"};
      std::string key = message_db_key(item.key);
      auto raw = txn->get(s.learned, key);
      if (!raw) return Error{raw.error()};
      std::optional<bool> before = *raw ? codec::decode_learned(**raw) : std::nullopt;
      if (before == item.spam) continue;  // already learned as this class
      tokens = *item.tokens;
      std::sort(tokens.begin(), tokens.end());
      tokens.erase(std::unique(tokens.begin(), tokens.end()), tokens.end());
      int32_t ds = item.spam ? 1 : -1, dh = item.spam ? -1 : 1;
      if (!before) ds = std::max(ds, 0), dh = std::max(dh, 0);
      for (uint64_t h : tokens) deltas.push_back({h, ds, dh});
      totals->spam = add_clamped(totals->spam, ds);
      totals->ham = add_clamped(totals->ham, dh);
      if (auto st = txn->put(s.learned, key, codec::encode_learned(item.spam)); !st) return st;
      changed = true;
    }
    if (!changed) return {};  // nothing to write: no commit, no fsync

    std::sort(deltas.begin(), deltas.end(), [](const Delta& a, const Delta& b) { return a.hash < b.hash; });
    for (size_t i = 0; i < deltas.size();) {
      uint64_t h = deltas[i].hash;
      int64_t ds = 0, dh = 0;
      for (; i < deltas.size() && deltas[i].hash == h; ++i) ds += deltas[i].spam, dh += deltas[i].ham;
      if (ds == 0 && dh == 0) continue;
      auto raw = txn->get(s.tokens, key_view(h));
      if (!raw) return Error{raw.error()};
      codec::Counts c;
      if (*raw) c = codec::decode_counts(**raw).value_or(codec::Counts{});  // a corrupt record restarts at 0
      c.spam = add_clamped(c.spam, ds);
      c.ham = add_clamped(c.ham, dh);
      if (c.spam == 0 && c.ham == 0) {
        if (auto d = txn->del(s.tokens, key_view(h)); !d) return Error{d.error()};
      } else if (auto st = txn->put(s.tokens, key_view(h), codec::encode_counts(c)); !st) {
        return st;
      }
    }
    if (auto st = txn->put(s.totals, kTotalsKey, codec::encode_counts(*totals)); !st) return st;
    return txn->commit();
  }
};

std::string Model::dir_for(const std::string& state_dir) { return state_dir + "/bayes"; }

Result<std::unique_ptr<Model>> Model::open(const std::string& state_dir) { return open(state_dir, ModelParams{}); }

Result<std::unique_ptr<Model>> Model::open(const std::string& state_dir, const ModelParams& params) {
  auto shared = open_shared(state_dir);
  if (!shared) return Error{shared.error()};
  auto impl = std::make_unique<Impl>();
  impl->shared = std::move(*shared);
  impl->params = params;
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

Status Model::learn(std::string_view message_key, const std::vector<uint64_t>& tokens, bool spam) {
  return impl_->learn({LearnRef{message_key, &tokens, spam}});
}

Status Model::learn_batch(const std::vector<Item>& items) {
  std::vector<LearnRef> refs;
  refs.reserve(items.size());
  for (const Item& it : items) refs.push_back({it.key, &it.tokens, it.spam});
  return impl_->learn(refs);
}

Classification Model::classify(const std::vector<uint64_t>& tokens) const {
  const SharedEnv& s = *impl_->shared;
  const ModelParams& params = impl_->params;
  // Short read transaction: it ends before this function returns.
  auto txn = store::Txn::begin(s.env, true);
  if (!txn) return {};
  auto totals = read_totals(*txn, s.totals);
  if (!totals || totals->spam < std::max<uint64_t>(params.min_spam_messages, 1) ||
      totals->ham < std::max<uint64_t>(params.min_ham_messages, 1))
    return {};

  std::vector<uint64_t> sorted = tokens;
  if (!std::is_sorted(sorted.begin(), sorted.end())) std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<double> probs;
  probs.reserve(sorted.size());
  {
    // In key order through one cursor: LMDB then searches from the current
    // leaf page instead of the root whenever the next key is on it.
    store::Cursor cur(*txn, s.tokens);
    for (const uint64_t& h : sorted) {
      if (!cur.seek(key_view(h))) break;  // past the last key: no later token can be present
      if (cur.key() != key_view(h)) continue;
      auto c = codec::decode_counts(cur.value());
      if (!c) continue;
      probs.push_back(token_probability(c->spam, c->ham, totals->spam, totals->ham, params));
    }
  }
  txn->abort();  // before the arithmetic: the read snapshot is no longer needed
  return combine(probs, params);
}

Result<ModelCounts> Model::counts() const {
  const SharedEnv& s = *impl_->shared;
  auto txn = store::Txn::begin(s.env, true);
  if (!txn) return Error{txn.error()};
  auto totals = read_totals(*txn, s.totals);
  if (!totals) return Error{totals.error()};
  MDB_stat st;
  if (int rc = mdb_stat(txn->get(), s.tokens, &st); rc != 0) return Error{store::lmdb_error("mdb_stat", rc)};
  return ModelCounts{totals->spam, totals->ham, st.ms_entries};
}

}  // namespace mxguard::bayes
