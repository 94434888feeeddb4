// `mxguard backup` and `mxguard restore`: the state dir's LMDB envs, copied
// with compaction while the engine runs, in one ustar archive whose first
// member, manifest.json, lists every file with its size and SHA-256.
#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/sysinfo.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <lmdb.h>
#include <nlohmann/json.hpp>

#include "console.hpp"
#include "output.hpp"

namespace mxguard::console {

namespace {

constexpr int kArchiveVersion = 1;
constexpr size_t kBlock = 512;

struct BackupOptions {
  std::string file;
  bool with_spools = false;
  bool json = false;
};
struct RestoreOptions {
  std::string file;
  bool force = false;
  bool json = false;
};

std::string errno_text(std::string_view what) { return fmt::format("{}: {}", what, std::strerror(errno)); }

// An open descriptor closed on every path.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
};

// SHA-256 of data fed in pieces (env copies and archive members are streamed,
// never held whole: a spool can hold gigabytes of queued mail).
class Sha256 {
 public:
  Sha256() { crypto_hash_sha256_init(&state_); }
  void add(std::string_view d) {
    crypto_hash_sha256_update(&state_, reinterpret_cast<const unsigned char*>(d.data()), d.size());
  }
  std::string hex() {
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&state_, h);
    std::string out;
    for (unsigned char c : h) out += fmt::format("{:02x}", c);
    return out;
  }

 private:
  crypto_hash_sha256_state state_;
};

constexpr size_t kChunk = size_t{1} << 20;

// Exactly n bytes at offset off; a file that ends sooner is an error.
Status read_at(int fd, char* buf, size_t n, uint64_t off, const std::string& path) {
  while (n > 0) {
    ssize_t r = ::pread(fd, buf, n, static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Error{errno_text(path)};
    }
    if (r == 0) return Error{fmt::format("{}: unexpected end of file", path)};
    buf += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
  }
  return {};
}

// Feeds the bytes [off, off + size) of fd to fn in pieces of at most kChunk.
template <typename Fn>
Status each_chunk(int fd, uint64_t off, uint64_t size, const std::string& path, Fn&& fn) {
  std::vector<char> buf(static_cast<size_t>(std::min<uint64_t>(size, kChunk)));
  while (size > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(size, buf.size()));
    if (Status st = read_at(fd, buf.data(), n, off, path); !st) return st;
    if (Status st = fn(std::string_view(buf.data(), n)); !st) return st;
    off += n;
    size -= n;
  }
  return {};
}

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{errno_text(path)};
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

// The envs of a state dir worth keeping, relative names; spool-N only on request
// (they hold mail in flight, which a restored appliance would deliver again).
std::vector<std::string> envs_to_copy(const std::string& state_dir, bool with_spools) {
  std::vector<std::string> out;
  DIR* d = ::opendir(state_dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    bool wanted = name == "config" || name == "bayes" || name == "greylist" || name == "callout" ||
                  (with_spools && name.rfind("spool-", 0) == 0);
    struct stat st {};
    std::string data = state_dir + "/" + name + "/data.mdb";
    if (wanted && ::stat(data.c_str(), &st) == 0) out.push_back(name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// One env's compacted copy: an unlinked scratch file (nothing is left behind
// on any exit), its size and SHA-256.
struct EnvCopy {
  std::string name;  // in the archive: ENV/data.mdb
  std::shared_ptr<Fd> file;
  uint64_t size = 0;
  std::string sha256;
};

// A consistent, compacted copy of one env: mdb_env_copyfd2 reads it in one
// read transaction, so writers of the running engine go on meanwhile.
Result<EnvCopy> copy_env(const std::string& dir, const std::string& name, const std::string& scratch) {
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc) return Error{fmt::format("{}: {}", dir, mdb_strerror(rc))};
  mdb_env_set_maxdbs(env, 64);
  mdb_env_set_maxreaders(env, 1024);
  // Map size 0 at open takes the size the engine set.
  rc = mdb_env_open(env, dir.c_str(), MDB_RDONLY | MDB_NOTLS, 0640);
  if (rc) {
    mdb_env_close(env);
    return Error{fmt::format("cannot open {}: {}", dir, mdb_strerror(rc))};
  }
  auto out = std::make_shared<Fd>(::open(scratch.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (out->fd < 0) {
    mdb_env_close(env);
    return Error{errno_text(scratch)};
  }
  ::unlink(scratch.c_str());
  rc = mdb_env_copyfd2(env, out->fd, MDB_CP_COMPACT);
  mdb_env_close(env);
  if (rc) return Error{fmt::format("copy of {}: {}", dir, mdb_strerror(rc))};
  struct stat st {};
  if (::fstat(out->fd, &st) != 0) return Error{errno_text(scratch)};
  EnvCopy c{name + "/data.mdb", out, static_cast<uint64_t>(st.st_size), {}};
  Sha256 h;
  Status read = each_chunk(out->fd, 0, c.size, scratch, [&h](std::string_view d) {
    h.add(d);
    return Status{};
  });
  if (!read) return Error{read.error()};
  c.sha256 = h.hex();
  return c;
}

void put_octal(char* field, size_t width, uint64_t value) {
  std::string s = fmt::format("{:0{}o}", value, width - 1);
  std::memcpy(field, s.data(), width - 1);
  field[width - 1] = '\0';
}

unsigned header_sum(const char* h) {
  unsigned sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
  return sum;
}

// A ustar member's header; its data follows, padded to the block size.
std::string tar_header(const std::string& name, uint64_t size, time_t mtime) {
  char h[kBlock] = {};
  std::memcpy(h, name.data(), std::min<size_t>(name.size(), 99));
  put_octal(h + 100, 8, 0640);
  put_octal(h + 108, 8, 0);
  put_octal(h + 116, 8, 0);
  put_octal(h + 124, 12, size);
  put_octal(h + 136, 12, static_cast<uint64_t>(mtime));
  h[156] = '0';
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  put_octal(h + 148, 7, header_sum(h));
  h[155] = ' ';
  return std::string(h, kBlock);
}

std::string tar_padding(uint64_t size) { return std::string((kBlock - size % kBlock) % kBlock, '\0'); }

std::string host_name() {
  char h[256] = {};
  ::gethostname(h, sizeof h - 1);
  return h;
}

std::string iso_now() {
  time_t t = std::time(nullptr);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int run_backup(const Context& ctx, const BackupOptions& o) {
  const std::string& state = ctx.config.state_dir;
  auto envs = envs_to_copy(state, o.with_spools);
  if (std::find(envs.begin(), envs.end(), "config") == envs.end())
    return runtime_error(fmt::format("state_dir {} has no config env to back up", state));
  std::string tmp = o.file + ".tmp";
  std::string scratch = o.file + ".copy.tmp";
  std::vector<EnvCopy> copies;
  for (const auto& e : envs) {
    auto copy = copy_env(state + "/" + e, e, scratch);
    if (!copy) return runtime_error(copy.error());
    copies.push_back(std::move(*copy));
  }
  nlohmann::ordered_json manifest = {{"version", kArchiveVersion},
                                     {"created", iso_now()},
                                     {"hostname", host_name()},
                                     {"state_dir", state},
                                     {"with_spools", o.with_spools},
                                     {"files", nlohmann::ordered_json::array()}};
  for (const auto& c : copies)
    manifest["files"].push_back({{"name", c.name}, {"size", c.size}, {"sha256", c.sha256}});
  time_t now = std::time(nullptr);
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (out.fd < 0) return runtime_error(errno_text(tmp));
  const std::string text = manifest.dump(2) + "\n";
  Status st = write_all(out.fd, tar_header("manifest.json", text.size(), now) + text + tar_padding(text.size()), tmp);
  for (const auto& c : copies) {
    if (st) st = write_all(out.fd, tar_header(c.name, c.size, now), tmp);
    if (st) st = each_chunk(c.file->fd, 0, c.size, scratch, [&](std::string_view d) { return write_all(out.fd, d, tmp); });
    if (st) st = write_all(out.fd, tar_padding(c.size), tmp);
  }
  if (st) st = write_all(out.fd, std::string(2 * kBlock, '\0'), tmp);
  if (st && ::fsync(out.fd) != 0) st = Error{errno_text(tmp)};
  if (!st) {
    ::unlink(tmp.c_str());
    return runtime_error(st.error());
  }
  if (::rename(tmp.c_str(), o.file.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return runtime_error(errno_text(o.file));
  }
  uint64_t total = 0;
  for (const auto& c : copies) total += c.size;
  if (o.json) {
    nlohmann::ordered_json members = nlohmann::ordered_json::array();
    for (const auto& c : copies) members.push_back({{"name", c.name}, {"size", c.size}, {"sha256", c.sha256}});
    print_json_line({{"file", o.file}, {"with_spools", o.with_spools}, {"bytes", total}, {"members", members}});
    return kExitOk;
  }
  fmt::print("backup written: {} ({} files, {} bytes of data)\n", o.file, copies.size(), total);
  return kExitOk;
}

// Where a member's data lies in the archive, and its SHA-256 as read.
struct Member {
  uint64_t offset = 0;
  uint64_t size = 0;
  std::string sha256;
};

Result<uint64_t> parse_octal(const char* field, size_t width) {
  uint64_t v = 0;
  size_t i = 0;
  while (i < width && field[i] == ' ') ++i;
  for (; i < width && field[i] >= '0' && field[i] <= '7'; ++i) v = v * 8 + static_cast<uint64_t>(field[i] - '0');
  if (i < width && field[i] != '\0' && field[i] != ' ') return Error{"bad number in a tar header"};
  return v;
}

// The members of a ustar archive after the first, every header's checksum
// checked and every member's data hashed; the first member's data (the
// manifest, small) goes to `first`.
Result<std::map<std::string, Member>> read_tar(int fd, const std::string& path, std::string& first_name,
                                               std::string& first) {
  struct stat fs {};
  if (::fstat(fd, &fs) != 0) return Error{errno_text(path)};
  const uint64_t total = static_cast<uint64_t>(fs.st_size);
  std::map<std::string, Member> out;
  uint64_t at = 0;
  for (bool is_first = true;; is_first = false) {
    if (at + kBlock > total) return Error{"truncated archive (no end marker)"};
    char h[kBlock];
    if (Status st = read_at(fd, h, kBlock, at, path); !st) return Error{st.error()};
    if (std::all_of(h, h + kBlock, [](char c) { return c == '\0'; })) break;
    auto sum = parse_octal(h + 148, 8);
    if (!sum || *sum != header_sum(h)) return Error{fmt::format("corrupt tar header at offset {}", at)};
    auto size = parse_octal(h + 124, 12);
    if (!size) return Error{size.error()};
    std::string name(h, strnlen(h, 100));
    at += kBlock;
    if (*size > total - at) return Error{fmt::format("truncated archive in {}", name)};
    if (is_first) {
      if (*size > (size_t{16} << 20)) return Error{fmt::format("first member {} is too large for a manifest", name)};
      first_name = name;
      first.resize(static_cast<size_t>(*size));
      if (Status st = read_at(fd, first.data(), first.size(), at, path); !st) return Error{st.error()};
    } else {
      if (out.count(name)) return Error{fmt::format("{} is in the archive twice", name)};
      Sha256 hash;
      Status st = each_chunk(fd, at, *size, path, [&hash](std::string_view d) {
        hash.add(d);
        return Status{};
      });
      if (!st) return Error{st.error()};
      out[name] = Member{at, *size, hash.hex()};
    }
    at += (*size + kBlock - 1) / kBlock * kBlock;
  }
  if (first_name.empty()) return Error{"empty archive"};
  return out;
}

// A file name of the manifest that stays inside the state dir: "ENV/data.mdb".
bool safe_name(const std::string& n) {
  size_t slash = n.find('/');
  if (slash == std::string::npos || n.substr(slash) != "/data.mdb") return false;
  std::string env = n.substr(0, slash);
  return !env.empty() && env != "." && env != ".." &&
         std::all_of(env.begin(), env.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
}

// The archive's files once the manifest and every checksum agree; nothing
// is written before this returns.
Result<std::map<std::string, Member>> verify_archive(int fd, const std::string& path) {
  std::string first_name, manifest;
  auto files = read_tar(fd, path, first_name, manifest);
  if (!files) return Error{fmt::format("{}: {}", path, files.error())};
  if (first_name != "manifest.json")
    return Error{fmt::format("{}: not an mxguard backup (no manifest.json first)", path)};
  nlohmann::json m = nlohmann::json::parse(manifest, nullptr, false);
  if (m.is_discarded() || !m.is_object() || !m.contains("files") || !m["files"].is_array())
    return Error{fmt::format("{}: manifest.json is not valid", path)};
  if (m.value("version", 0) != kArchiveVersion)
    return Error{fmt::format("{}: archive version {} is not supported", path, m.value("version", 0))};
  if (files->size() != m["files"].size())
    return Error{fmt::format("{}: {} files in the archive, {} in the manifest", path, files->size(), m["files"].size())};
  for (const auto& f : m["files"]) {
    std::string name = f.is_object() ? f.value("name", "") : "";
    if (!safe_name(name)) return Error{fmt::format("{}: unexpected file name '{}' in the manifest", path, name)};
    auto it = files->find(name);
    if (it == files->end()) return Error{fmt::format("{}: {} is in the manifest but not in the archive", path, name)};
    if (it->second.size != f.value("size", uint64_t{0}) || it->second.sha256 != f.value("sha256", ""))
      return Error{fmt::format("{}: checksum mismatch for {}: the archive is damaged", path, name)};
  }
  if (files->find("config/data.mdb") == files->end()) return Error{fmt::format("{}: no config env in the archive", path)};
  return files;
}

// Whether an engine runs on the state dir: it holds an flock on mxguardd.pid
// for as long as it runs. On success the lock is ours until `held` closes.
Result<int> lock_state_dir(const std::string& state) {
  std::string pid = state + "/mxguardd.pid";
  int fd = ::open(pid.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return errno == ENOENT ? -1 : Result<int>(Error{errno_text(pid)});
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return Error{fmt::format("state_dir {} is in use by a running mxguardd (lock held on {}); stop it first", state,
                             pid)};
  }
  return fd;
}

bool has_data(const std::string& state) {
  DIR* d = ::opendir(state.c_str());
  if (!d) return false;
  bool any = false;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != ".." && n != "mxguardd.pid") any = true;
  }
  ::closedir(d);
  return any;
}

// One member's data into a new file, hashed again on the way (the archive
// could have changed since it was checked), then synced.
Status write_member(int archive, const std::string& archive_path, const Member& m, const std::string& path) {
  Fd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (f.fd < 0) return Error{errno_text(path)};
  Sha256 hash;
  Status st = each_chunk(archive, m.offset, m.size, archive_path, [&](std::string_view d) {
    hash.add(d);
    return write_all(f.fd, d, path);
  });
  if (st && hash.hex() != m.sha256) st = Error{fmt::format("{} changed while it was restored", archive_path)};
  if (st && ::fsync(f.fd) != 0) st = Error{errno_text(path)};
  return st;
}

// The user the restored files must belong to: root (the operator's console)
// restoring into the engine's state dir would otherwise leave root-owned envs
// the engine, which runs as its own user, cannot open. The owner of the state
// dir being replaced, else of the directory it is made in.
std::optional<struct stat> state_owner(const std::string& state) {
  if (::geteuid() != 0) return std::nullopt;
  struct stat st {};
  const size_t slash = state.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : state.substr(0, slash);
  if (::stat(state.c_str(), &st) != 0 && ::stat(parent.c_str(), &st) != 0) return std::nullopt;
  if (st.st_uid == 0) return std::nullopt;
  return st;
}

// An engine opens spool-0 .. spool-(shards-1) only: mail restored into a
// spool beyond them would wait, unseen, until the engine runs that many shards.
void warn_unserved_spools(const Config& cfg, const std::map<std::string, Member>& files) {
  const unsigned shards = cfg.smtp.shards ? cfg.smtp.shards : static_cast<unsigned>(get_nprocs());
  std::string beyond;
  for (const auto& [name, _] : files) {
    if (name.rfind("spool-", 0) != 0) continue;
    const std::string env = name.substr(0, name.find('/'));
    unsigned long n = std::strtoul(env.c_str() + 6, nullptr, 10);
    if (n >= shards) beyond += (beyond.empty() ? "" : ", ") + env;
  }
  if (!beyond.empty())
    fmt::print(stderr,
               "mxguard: warning: this configuration runs {} shard(s); the mail in {} is delivered only by an "
               "engine with more (set smtp.shards)\n",
               shards, beyond);
}

int run_restore(const Context& ctx, const RestoreOptions& o) {
  std::string state = ctx.config.state_dir;
  while (state.size() > 1 && state.back() == '/') state.pop_back();
  Fd archive(::open(o.file.c_str(), O_RDONLY | O_CLOEXEC));
  if (archive.fd < 0) return runtime_error(fmt::format("restore refused: {}", errno_text(o.file)));
  auto files = verify_archive(archive.fd, o.file);
  if (!files) return runtime_error(fmt::format("restore refused: {}", files.error()));
  auto lock = lock_state_dir(state);
  if (!lock) return runtime_error(fmt::format("restore refused: {}", lock.error()));
  Fd held(*lock);
  bool exists = has_data(state);
  if (exists && !o.force)
    return runtime_error(fmt::format("restore refused: state_dir {} holds data; add --force to replace it "
                                     "(it is kept beside as {}.pre-restore-*)", state, state));
  std::string tmpl = state + ".restore-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) return runtime_error(errno_text(tmpl));
  std::string tmp = buf.data();
  auto cleanup = [&tmp, &files] {
    for (const auto& [name, _] : *files) {
      ::unlink((tmp + "/" + name).c_str());
      ::rmdir((tmp + "/" + name.substr(0, name.find('/'))).c_str());
    }
    ::rmdir(tmp.c_str());
  };
  ::chmod(tmp.c_str(), 0750);
  for (const auto& [name, member] : *files) {
    std::string dir = tmp + "/" + name.substr(0, name.find('/'));
    Status st = ::mkdir(dir.c_str(), 0750) == 0 ? Status{} : Status{Error{errno_text(dir)}};
    if (st) st = write_member(archive.fd, o.file, member, tmp + "/" + name);
    if (!st) {
      cleanup();
      return runtime_error(fmt::format("restore failed, state_dir untouched: {}", st.error()));
    }
  }
  if (auto owner = state_owner(state)) {
    std::vector<std::string> paths{tmp};
    for (const auto& [name, _] : *files) {
      paths.push_back(tmp + "/" + name.substr(0, name.find('/')));
      paths.push_back(tmp + "/" + name);
    }
    for (const auto& p : paths) {
      if (::lchown(p.c_str(), owner->st_uid, owner->st_gid) != 0) {
        std::string why = errno_text(p);
        cleanup();
        return runtime_error(fmt::format("restore failed, state_dir untouched: {}", why));
      }
    }
  }
  std::string kept;
  if (::access(state.c_str(), F_OK) == 0) {
    kept = fmt::format("{}.pre-restore-{}", state, std::time(nullptr));
    if (::rename(state.c_str(), kept.c_str()) != 0) {
      cleanup();
      return runtime_error(fmt::format("restore failed, state_dir untouched: {}", errno_text(kept)));
    }
  }
  if (::rename(tmp.c_str(), state.c_str()) != 0) {
    std::string why = errno_text(state);
    if (!kept.empty()) (void)::rename(kept.c_str(), state.c_str());
    cleanup();
    return runtime_error(fmt::format("restore failed, state_dir untouched: {}", why));
  }
  if (o.json) {
    nlohmann::ordered_json members = nlohmann::ordered_json::array();
    for (const auto& [name, m] : *files) members.push_back({{"name", name}, {"size", m.size}, {"sha256", m.sha256}});
    print_json_line({{"file", o.file},
                     {"state_dir", state},
                     {"members", members},
                     {"previous_state_dir", kept.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(kept)}});
  } else {
    fmt::print("restored {} files from {} into {}\n", files->size(), o.file, state);
  }
  warn_unserved_spools(ctx.config, *files);
  if (!kept.empty() && !o.json) fmt::print("the previous state_dir is kept as {}\n", kept);
  return kExitOk;
}

}  // namespace

void add_backup_commands(CLI::App& root, Commands& out) {
  {
    auto o = std::make_shared<BackupOptions>();
    CLI::App* cmd = root.add_subcommand("backup", "Write a consistent copy of the state dir to one archive file");
    cmd->add_option("FILE", o->file, "Archive to write (written as FILE.tmp, then renamed)")->required();
    cmd->add_flag("--with-spools", o->with_spools, "Include the mail queue spools (mail in flight)");
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_backup(ctx, *o); }, /*needs_store=*/false});
  }
  {
    auto o = std::make_shared<RestoreOptions>();
    CLI::App* cmd = root.add_subcommand("restore", "Restore a backup archive into the configured state dir");
    cmd->add_option("FILE", o->file, "Archive written by mxguard backup")->required();
    cmd->add_flag("--force", o->force, "Replace a state dir that holds data (never one an engine runs on)");
    add_json_flag(*cmd, o->json);
    out.push_back({cmd, [o](const Context& ctx) { return run_restore(ctx, *o); }, /*needs_store=*/false});
  }
}

}  // namespace mxguard::console
