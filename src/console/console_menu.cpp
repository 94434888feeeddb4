// `mxguard console`: the operator's menu on the appliance's serial line and
// screen (and over SSH). Every action runs an ordinary command -- this
// binary's own subcommands or the system's tools -- so the menu adds no
// second way of changing state.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "console.hpp"
#include "validate.hpp"

namespace mxguard::console {

namespace {

// Appliance files written by appliance-image/rootfs/usr/lib/mxguard/appliance/setup.
constexpr const char* kApplianceDir = "/var/lib/appliance";
constexpr const char* kAuthorizedKeys = "/var/lib/appliance/ssh/authorized_keys";
constexpr const char* kNetworkOverride = "/var/lib/appliance/network/80-mxguard.network";
constexpr const char* kRunNetwork = "/run/systemd/network/80-mxguard.network";

struct MenuOptions {
  std::string config_path;  // passed on to the subcommands the menu runs
};

struct Child {
  int status = -1;
  std::string output;
  bool ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

// The owner of the state dir, when the menu runs as root and someone else
// owns it: mxguard subcommands run as that user, so what they create in the
// state dir stays the engine's.
std::optional<std::pair<uid_t, gid_t>> state_owner(const Context& ctx) {
  struct stat st {};
  if (getuid() != 0 || ::stat(ctx.config.state_dir.c_str(), &st) != 0 || st.st_uid == 0) return std::nullopt;
  return std::pair{st.st_uid, st.st_gid};
}

// Runs argv (PATH lookup), optionally as another user, with stdout captured
// or passed through; stdin is the menu's own.
Child run(const std::vector<std::string>& argv, bool capture,
          std::optional<std::pair<uid_t, gid_t>> as = std::nullopt) {
  Child c;
  int fds[2] = {-1, -1};
  if (capture && pipe2(fds, O_CLOEXEC) != 0) return c;
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return c;
  if (pid == 0) {
    signal(SIGINT, SIG_DFL);
    if (capture) dup2(fds[1], STDOUT_FILENO);
    if (as) {
      const passwd* pw = getpwuid(as->first);
      if ((pw && initgroups(pw->pw_name, as->second) != 0) || setgid(as->second) != 0 || setuid(as->first) != 0)
        _exit(126);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  if (capture) {
    close(fds[1]);
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) c.output.append(buf, static_cast<size_t>(n));
    close(fds[0]);
  }
  // Ctrl-C belongs to the child (a live feed, a shell) while it runs.
  signal(SIGINT, SIG_IGN);
  waitpid(pid, &c.status, 0);
  return c;
}

class Menu {
 public:
  Menu(const Context& ctx, const MenuOptions& o) : ctx_(ctx), opts_(o), owner_(state_owner(ctx)) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self_ = n > 0 ? std::string(self, static_cast<size_t>(n)) : "mxguard";
  }

  // Where customers and operators reach mxguard-web: web.public_url, else
  // this host on the first web.listen port; "" when the dashboard is off.
  std::string dashboard_url() const {
    const WebConfig& w = ctx_.config.web;
    if (w.listen.empty()) return "";
    if (!w.public_url.empty()) return w.public_url;
    uint16_t port = w.listen.front().port;
    const char* scheme = w.insecure_http ? "http" : "https";
    bool standard = port == (w.insecure_http ? 80 : 443);
    return standard ? fmt::format("{}://{}", scheme, ctx_.config.hostname)
                    : fmt::format("{}://{}:{}", scheme, ctx_.config.hostname, port);
  }

  int loop() {
    signal(SIGINT, SIG_IGN);
    while (true) {
      fmt::print("\nMxGuard console on {} -- {}\n", hostname(), ctx_.config.hostname);
      if (std::string url = dashboard_url(); !url.empty()) fmt::print("Dashboard: {}/\n", url);
      fmt::print(
          "  1) Status (engine, shards, queue, last verdicts)\n"
          "  2) Live feed (Ctrl-C to return)\n"
          "  3) Domains\n"
          "  4) Network settings\n"
          "  5) Operator SSH keys\n"
          "  6) Rule bundles\n"
          "  7) Shell\n"
          "  8) Reboot\n"
          "  q) Quit\n");
      auto choice = ask("Choice");
      if (!choice) return kExitOk;
      if (*choice == "1") status();
      else if (*choice == "2") mxguard({"feed", "--follow", "-n", "20"});
      else if (*choice == "3") domains();
      else if (*choice == "4") network();
      else if (*choice == "5") ssh_keys();
      else if (*choice == "6") rules();
      else if (*choice == "7") shell();
      else if (*choice == "8") reboot();
      else if (*choice == "q" || *choice == "Q") return kExitOk;
      else if (!choice->empty()) fmt::print("No such choice: {}\n", *choice);
    }
  }

 private:
  // One line from the operator; nullopt at end of input.
  static std::optional<std::string> ask(std::string_view prompt) {
    fmt::print("{}: ", prompt);
    std::fflush(stdout);
    std::string line;
    if (!std::getline(std::cin, line)) return std::nullopt;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    return line;
  }

  static bool confirm(std::string_view what) {
    auto a = ask(fmt::format("{} [y/N]", what));
    return a && (*a == "y" || *a == "Y" || *a == "yes");
  }

  static std::string hostname() {
    char h[256] = {};
    gethostname(h, sizeof h - 1);
    return h;
  }

  Child mxguard(std::vector<std::string> args, bool capture = false) {
    std::vector<std::string> argv{self_};
    if (!opts_.config_path.empty()) argv.insert(argv.end(), {"--config", opts_.config_path});
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, capture, owner_);
  }

  // The same report as `mxguard status` (engine lock and status file, no
  // systemd needed), then the newest verdicts.
  void status() {
    mxguard({"status"});
    fmt::print("Last verdicts:\n");
    mxguard({"feed", "-n", "10"});
  }

  void domains() {
    mxguard({"domain", "list"});
    auto a = ask("a) add  r) remove  (Enter to return)");
    if (!a || a->empty()) return;
    if (*a == "a") {
      auto name = ask("Domain");
      auto customer = ask("Customer");
      auto backend = ask("Backend host[:port]");
      if (!name || !customer || !backend || name->empty() || customer->empty() || backend->empty()) return;
      mxguard({"domain", "add", *name, "--customer", *customer, "--backend", *backend, "--active"});
    } else if (*a == "r") {
      auto name = ask("Domain to remove");
      if (name && !name->empty() && confirm("Remove " + *name + " (mail for it is refused from then on)?"))
        mxguard({"domain", "remove", *name});
    }
  }

  void rules() {
    mxguard({"rules", "list"});
    auto a = ask("p) push a bundle file  b) roll back  (Enter to return)");
    if (!a || a->empty()) return;
    if (*a == "p") {
      auto path = ask("Bundle file (copied with scp, e.g. /tmp/rules.bundle)");
      if (path && !path->empty()) mxguard({"rules", "push", *path});
    } else if (*a == "b" && confirm("Make the previous bundle active again?")) {
      mxguard({"rules", "rollback"});
    }
  }

  void network() {
    run({"ip", "-brief", "address"}, false);
    run({"ip", "route"}, false);
    if (!appliance()) return;
    auto a = ask("s) static address  d) DHCP  (Enter to return)");
    if (!a || a->empty()) return;
    std::string conf = "# Written by the MxGuard console menu.\n[Match]\nType=ether\n\n[Network]\n";
    if (*a == "s") {
      auto addr = ask("Address/prefix (e.g. 192.0.2.10/24)");
      if (!addr || addr->empty()) return;
      auto gw = ask("Gateway");
      auto dns = ask("DNS servers (space-separated)");
      // Checked before anything is written: a bad line would cut the box off its network.
      auto lines = static_network_lines(*addr, gw ? *gw : "", dns ? *dns : "");
      if (!lines) {
        fmt::print("Not saved: {}.\n", lines.error());
        return;
      }
      conf += *lines;
    } else if (*a == "d") {
      conf += "DHCP=yes\n\n[DHCPv4]\nClientIdentifier=mac\n";
    } else {
      return;
    }
    if (!write_file(kNetworkOverride, conf, 0644) || !write_file(kRunNetwork, conf, 0644)) return;
    run({"networkctl", "reload"}, false);
    run({"networkctl", "reconfigure", "--no-pager"}, false);
    fmt::print("Network settings saved (kept across reboots and updates).\n");
  }

  void ssh_keys() {
    if (!appliance()) return;
    std::vector<std::string> keys;
    {
      std::ifstream in(kAuthorizedKeys);
      std::string line;
      while (std::getline(in, line))
        if (!line.empty() && line[0] != '#') keys.push_back(line);
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      std::istringstream fields(keys[i]);
      std::string type, blob, comment;
      fields >> type >> blob;
      std::getline(fields, comment);
      fmt::print("  {}) {} {}...{}\n", i + 1, type, blob.substr(0, 16), comment);
    }
    if (keys.empty()) fmt::print("  (no operator keys: SSH logins are impossible)\n");
    auto a = ask("a) add a key  r) remove a key  (Enter to return)");
    if (!a || a->empty()) return;
    if (*a == "a") {
      auto key = ask("Public key line (ssh-ed25519 AAAA... comment)");
      if (!key || key->empty()) return;
      for (const auto& k : keys)
        if (k == *key) {
          fmt::print("That key is there already; nothing changed.\n");
          return;
        }
      std::string tmp = std::string(kAuthorizedKeys) + ".check";
      if (!write_file(tmp, *key + "\n", 0600)) return;
      Child check = run({"ssh-keygen", "-l", "-f", tmp}, true);
      unlink(tmp.c_str());
      if (!check.ok()) {
        fmt::print("Not a valid public key; nothing changed.\n");
        return;
      }
      keys.push_back(*key);
    } else if (*a == "r") {
      auto n = ask("Number of the key to remove");
      if (!n || n->empty()) return;
      // Digits only: atoi("2x") would quietly remove key 2.
      size_t i = n->find_first_not_of("0123456789") == std::string::npos && n->size() < 6
                     ? static_cast<size_t>(std::stoul(*n))
                     : 0;
      if (i < 1 || i > keys.size()) {
        fmt::print("No key {}; nothing changed.\n", *n);
        return;
      }
      if (keys.size() == 1 && !confirm("This is the last key; SSH logins will be impossible. Remove it?")) return;
      keys.erase(keys.begin() + static_cast<long>(i - 1));
    } else {
      return;
    }
    std::string text;
    for (const auto& k : keys) text += k + "\n";
    if (write_file(kAuthorizedKeys, text, 0600)) fmt::print("Operator keys saved.\n");
  }

  void shell() {
    const char* sh = std::getenv("SHELL");
    fmt::print("Type exit to return to the menu.\n");
    run({sh && *sh ? sh : "/bin/bash", "-l"}, false);
  }

  void reboot() {
    if (confirm("Reboot the appliance now?")) run({"systemctl", "reboot"}, false);
  }

  static bool appliance() {
    struct stat st {};
    if (::stat(kApplianceDir, &st) == 0 && S_ISDIR(st.st_mode)) return true;
    fmt::print("This is not an MxGuard appliance ({} is missing): nothing to change here.\n", kApplianceDir);
    return false;
  }

  // Replaces path whole (temporary file, fsync, rename): never half-written.
  static bool write_file(const std::string& path, const std::string& text, mode_t mode) {
    std::string tmp = path + ".tmp";
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
              ::fsync(fd) == 0;
    if (fd >= 0) ::close(fd);
    if (ok) ok = ::rename(tmp.c_str(), path.c_str()) == 0;
    if (!ok) {
      fmt::print("Could not write {}: {}\n", path, std::strerror(errno));
      ::unlink(tmp.c_str());
    }
    return ok;
  }

  static std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

  const Context& ctx_;
  const MenuOptions& opts_;
  std::optional<std::pair<uid_t, gid_t>> owner_;
  std::string self_;
};

}  // namespace

void add_console_menu_commands(CLI::App& root, Commands& out) {
  auto o = std::make_shared<MenuOptions>();
  CLI::App* cmd = root.add_subcommand("console", "Operator menu for the serial line, screen and SSH");
  out.push_back({cmd, [o, &root](const Context& ctx) {
                   // The menu's subcommands use the same configuration file.
                   if (auto* opt = root.get_option_no_throw("--config"); opt && opt->count())
                     o->config_path = opt->as<std::string>();
                   Menu menu(ctx, *o);
                   return menu.loop();
                 }});
}

}  // namespace mxguard::console
