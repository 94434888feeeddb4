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
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <lmdb.h>
#include <nlohmann/json.hpp>

#include "console.hpp"

namespace mxguard::console {

namespace {

constexpr int kArchiveVersion = 1;
constexpr size_t kBlock = 512;

struct BackupOptions {
  std::string file;
  bool with_spools = false;
};
struct RestoreOptions {
  std::string file;
  bool force = false;
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

std::string sha256_hex(std::string_view data) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  std::string out;
  for (unsigned char c : h) out += fmt::format("{:02x}", c);
  return out;
}

Result<std::string> read_whole(const std::string& path) {
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) return Error{errno_text(path)};
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0) return Error{errno_text(path)};
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
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

// A consistent, compacted copy of one env: mdb_env_copyfd2 reads it in one
// read transaction, so writers of the running engine go on meanwhile.
Result<std::string> copy_env(const std::string& dir, const std::string& tmp_file) {
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
  Fd out(::open(tmp_file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (out.fd < 0) {
    mdb_env_close(env);
    return Error{errno_text(tmp_file)};
  }
  rc = mdb_env_copyfd2(env, out.fd, MDB_CP_COMPACT);
  mdb_env_close(env);
  if (rc) return Error{fmt::format("copy of {}: {}", dir, mdb_strerror(rc))};
  return read_whole(tmp_file);
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

// One ustar member: header, data, padding to the block size.
std::string tar_member(const std::string& name, std::string_view data, time_t mtime) {
  char h[kBlock] = {};
  std::memcpy(h, name.data(), std::min<size_t>(name.size(), 99));
  put_octal(h + 100, 8, 0640);
  put_octal(h + 108, 8, 0);
  put_octal(h + 116, 8, 0);
  put_octal(h + 124, 12, data.size());
  put_octal(h + 136, 12, static_cast<uint64_t>(mtime));
  h[156] = '0';
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  put_octal(h + 148, 7, header_sum(h));
  h[155] = ' ';
  std::string out(h, kBlock);
  out.append(data);
  out.append((kBlock - data.size() % kBlock) % kBlock, '\0');
  return out;
}

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
  std::vector<std::pair<std::string, std::string>> files;  // archive name, contents
  for (const auto& e : envs) {
    auto copy = copy_env(state + "/" + e, scratch);
    ::unlink(scratch.c_str());
    if (!copy) return runtime_error(copy.error());
    files.emplace_back(e + "/data.mdb", std::move(*copy));
  }
  nlohmann::ordered_json manifest = {{"version", kArchiveVersion},
                                     {"created", iso_now()},
                                     {"hostname", host_name()},
                                     {"state_dir", state},
                                     {"with_spools", o.with_spools},
                                     {"files", nlohmann::ordered_json::array()}};
  for (const auto& [name, data] : files)
    manifest["files"].push_back({{"name", name}, {"size", data.size()}, {"sha256", sha256_hex(data)}});
  time_t now = std::time(nullptr);
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (out.fd < 0) return runtime_error(errno_text(tmp));
  Status st = write_all(out.fd, tar_member("manifest.json", manifest.dump(2) + "\n", now), tmp);
  for (const auto& [name, data] : files)
    if (st) st = write_all(out.fd, tar_member(name, data, now), tmp);
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
  for (const auto& f : files) total += f.second.size();
  fmt::print("backup written: {} ({} files, {} bytes of data)\n", o.file, files.size(), total);
  return kExitOk;
}

struct Member {
  std::string name;
  std::string data;
};

Result<uint64_t> parse_octal(const char* field, size_t width) {
  uint64_t v = 0;
  size_t i = 0;
  while (i < width && field[i] == ' ') ++i;
  for (; i < width && field[i] >= '0' && field[i] <= '7'; ++i) v = v * 8 + static_cast<uint64_t>(field[i] - '0');
  if (i < width && field[i] != '\0' && field[i] != ' ') return Error{"bad number in a tar header"};
  return v;
}

// The members of a ustar archive, every header's checksum checked.
Result<std::vector<Member>> read_tar(std::string_view a) {
  std::vector<Member> out;
  size_t at = 0;
  for (;;) {
    if (at + kBlock > a.size()) return Error{"truncated archive (no end marker)"};
    const char* h = a.data() + at;
    if (std::all_of(h, h + kBlock, [](char c) { return c == '\0'; })) break;
    auto sum = parse_octal(h + 148, 8);
    if (!sum || *sum != header_sum(h)) return Error{fmt::format("corrupt tar header at offset {}", at)};
    auto size = parse_octal(h + 124, 12);
    if (!size) return Error{size.error()};
    std::string name(h, strnlen(h, 100));
    at += kBlock;
    if (*size > a.size() - at) return Error{fmt::format("truncated archive in {}", name)};
    out.push_back({name, std::string(a.substr(at, *size))});
    at += (*size + kBlock - 1) / kBlock * kBlock;
  }
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
Result<std::map<std::string, std::string>> verify_archive(const std::string& path) {
  auto bytes = read_whole(path);
  if (!bytes) return Error{bytes.error()};
  auto members = read_tar(*bytes);
  if (!members) return Error{fmt::format("{}: {}", path, members.error())};
  if (members->empty() || (*members)[0].name != "manifest.json")
    return Error{fmt::format("{}: not an mxguard backup (no manifest.json first)", path)};
  nlohmann::json m = nlohmann::json::parse((*members)[0].data, nullptr, false);
  if (m.is_discarded() || !m.is_object() || !m.contains("files") || !m["files"].is_array())
    return Error{fmt::format("{}: manifest.json is not valid", path)};
  if (m.value("version", 0) != kArchiveVersion)
    return Error{fmt::format("{}: archive version {} is not supported", path, m.value("version", 0))};
  std::map<std::string, std::string> files;
  for (size_t i = 1; i < members->size(); ++i) files[(*members)[i].name] = std::move((*members)[i].data);
  if (files.size() != m["files"].size())
    return Error{fmt::format("{}: {} files in the archive, {} in the manifest", path, files.size(), m["files"].size())};
  for (const auto& f : m["files"]) {
    std::string name = f.value("name", "");
    if (!safe_name(name)) return Error{fmt::format("{}: unexpected file name '{}' in the manifest", path, name)};
    auto it = files.find(name);
    if (it == files.end()) return Error{fmt::format("{}: {} is in the manifest but not in the archive", path, name)};
    if (it->second.size() != f.value("size", uint64_t{0}) || sha256_hex(it->second) != f.value("sha256", ""))
      return Error{fmt::format("{}: checksum mismatch for {}: the archive is damaged", path, name)};
  }
  if (files.find("config/data.mdb") == files.end()) return Error{fmt::format("{}: no config env in the archive", path)};
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

Status write_file(const std::string& path, std::string_view data) {
  Fd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (f.fd < 0) return Error{errno_text(path)};
  Status st = write_all(f.fd, data, path);
  if (st && ::fsync(f.fd) != 0) return Error{errno_text(path)};
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
void warn_unserved_spools(const Config& cfg, const std::map<std::string, std::string>& files) {
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
  auto files = verify_archive(o.file);
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
  for (const auto& [name, data] : *files) {
    std::string dir = tmp + "/" + name.substr(0, name.find('/'));
    Status st = ::mkdir(dir.c_str(), 0750) == 0 ? Status{} : Status{Error{errno_text(dir)}};
    if (st) st = write_file(tmp + "/" + name, data);
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
  fmt::print("restored {} files from {} into {}\n", files->size(), o.file, state);
  warn_unserved_spools(ctx.config, *files);
  if (!kept.empty()) fmt::print("the previous state_dir is kept as {}\n", kept);
  return kExitOk;
}

}  // namespace

void add_backup_commands(CLI::App& root, Commands& out) {
  {
    auto o = std::make_shared<BackupOptions>();
    CLI::App* cmd = root.add_subcommand("backup", "Write a consistent copy of the state dir to one archive file");
    cmd->add_option("FILE", o->file, "Archive to write (written as FILE.tmp, then renamed)")->required();
    cmd->add_flag("--with-spools", o->with_spools, "Include the mail queue spools (mail in flight)");
    out.push_back({cmd, [o](const Context& ctx) { return run_backup(ctx, *o); }, /*needs_store=*/false});
  }
  {
    auto o = std::make_shared<RestoreOptions>();
    CLI::App* cmd = root.add_subcommand("restore", "Restore a backup archive into the configured state dir");
    cmd->add_option("FILE", o->file, "Archive written by mxguard backup")->required();
    cmd->add_flag("--force", o->force, "Replace a state dir that holds data (never one an engine runs on)");
    out.push_back({cmd, [o](const Context& ctx) { return run_restore(ctx, *o); }, /*needs_store=*/false});
  }
}

}  // namespace mxguard::console
