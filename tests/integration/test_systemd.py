#!/usr/bin/env python3
"""systemd integration without booting: the units as installed (verify and
security exposure), `meson install` into a DESTDIR, and the engine's watchdog
protocol against a notify socket this test owns.

Run: python3 tests/integration/test_systemd.py BUILD_DIR
(meson test passes the build dir; MXGUARDD_BIN names the engine.)

Not shown here (no systemd as PID 1 on the test machine): systemd killing and
restarting the service when the pings stop; the appliance image test boots
the real units.
"""
import ctypes
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402

BUILD = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(mxg.ROOT, "build"))
UNITS = ["mxguardd.service", "mxguard-web.service", "mxguard-maintenance.service", "mxguard-maintenance.timer",
         "mxguard-digest.service", "mxguard-digest.timer", "mxguard-console@.service"]
MAX_EXPOSURE = 2.0


def read(path):
    with open(path) as f:
        return f.read()


def meson_install(destdir):
    """Installs this build into destdir, as an image build does."""
    p = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", destdir, "--no-rebuild", "--quiet"],
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError("meson install failed: %s%s" % (p.stdout, p.stderr))


class InstalledTree(unittest.TestCase):
    """One install into a temporary root, shared by the unit checks."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mxg-install-")
        meson_install(cls.tmp)
        # The prefix this build was configured with (/usr for images).
        prefix = subprocess.run(["meson", "introspect", "--buildoptions", BUILD], capture_output=True,
                                text=True, check=True).stdout
        cls.prefix = re.search(r'"name": "prefix", "value": "([^"]*)"', prefix).group(1)
        cls.unit_dir = os.path.join(cls.tmp, cls.prefix.lstrip("/"), "lib/systemd/system")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.tmp, self.prefix.lstrip("/"), *parts)

    def test_install_puts_everything_where_the_units_expect_it(self):
        expect = [self.path("sbin/mxguardd"), self.path("bin/mxguard"), self.path("sbin/mxguard-web"),
                  self.path("share/mxguard/web/index.html"),
                  self.path("share/mxguard/factory.bundle"),
                  self.path("share/mxguard/rules/high-value-domains.txt"),
                  self.path("share/mxguard/rules/10-headers.rules"),
                  self.path("lib/sysusers.d/mxguard.conf"), self.path("lib/tmpfiles.d/mxguard.conf")]
        expect += [os.path.join(self.unit_dir, u) for u in UNITS]
        etc = "etc" if self.prefix == "/usr" else os.path.join(self.prefix.lstrip("/"), "etc")
        expect.append(os.path.join(self.tmp, etc, "mxguard/mxguard.toml"))
        missing = [p for p in expect if not os.path.exists(p)]
        self.assertEqual(missing, [])
        for exe in expect[:3]:
            self.assertTrue(os.access(exe, os.X_OK), exe)
        unit = read(os.path.join(self.unit_dir, "mxguardd.service"))
        self.assertIn("ExecStart=%s/sbin/mxguardd --config " % self.prefix, unit)
        web = read(os.path.join(self.unit_dir, "mxguard-web.service"))
        self.assertIn("ExecStart=%s/sbin/mxguard-web --config " % self.prefix, web)
        # The installed default configuration is one the engine accepts.
        conf = os.path.join(self.tmp, etc, "mxguard/mxguard.toml")
        p = subprocess.run([self.path("sbin/mxguardd"), "--config", conf, "--check-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_units_verify(self):
        # verify checks that ExecStart= binaries exist, so it runs against the
        # installed tree with the binaries at the paths the units name.
        env = dict(os.environ, SYSTEMD_LOG_LEVEL="notice")
        for unit in UNITS:
            target = unit.replace("@.service", "@ttyS0.service")
            p = subprocess.run(["systemd-analyze", "verify", "--root=" + self.tmp, "--man=no",
                                "--recursive-errors=no", os.path.join(self.unit_dir, unit) + ":" + target],
                               capture_output=True, text=True, timeout=60, env=env)
            out = (p.stdout + p.stderr).strip()
            # Debian's own units pulled in by name (network-online.target…) are
            # not in the temporary root; only our units' own problems count.
            own = [l for l in out.splitlines() if "mxguard" in l and "not found" not in l.lower()]
            self.assertEqual(p.returncode, 0, out)
            self.assertEqual(own, [], out)
            print("systemd-analyze verify %s: ok" % unit)

    def exposure(self, name):
        p = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--root=" + self.tmp,
                            "--no-pager", os.path.join(self.unit_dir, name)],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for %s: (\d+\.\d+)" % re.escape(name), p.stdout)
        self.assertIsNotNone(m, p.stdout + p.stderr)
        exposure = float(m.group(1))
        print("systemd-analyze security %s: exposure %.1f (limit %.1f)" % (name, exposure, MAX_EXPOSURE))
        self.assertLessEqual(exposure, MAX_EXPOSURE)

    def test_web_unit_exposure(self):
        self.exposure("mxguard-web.service")
        unit = read(os.path.join(self.unit_dir, "mxguard-web.service"))
        self.assertRegex(unit, r"(?m)^User=mxguard$")
        self.assertRegex(unit, r"(?m)^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$")

    def test_digest_units(self):
        self.exposure("mxguard-digest.service")
        unit = read(os.path.join(self.unit_dir, "mxguard-digest.service"))
        self.assertIn("ExecStart=%s/bin/mxguard --config " % self.prefix, unit)
        self.assertRegex(unit, r"(?m) digest send$")
        self.assertRegex(unit, r"(?m)^User=mxguard$")
        timer = read(os.path.join(self.unit_dir, "mxguard-digest.timer"))
        self.assertRegex(timer, r"(?m)^OnCalendar=\S")
        self.assertRegex(timer, r"(?m)^Persistent=yes$")

    def test_engine_unit_exposure(self):
        self.exposure("mxguardd.service")
        unit = read(os.path.join(self.unit_dir, "mxguardd.service"))
        self.assertRegex(unit, r"(?m)^WatchdogSec=\d+")
        self.assertRegex(unit, r"(?m)^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$")
        self.assertRegex(unit, r"(?m)^SystemCallFilter=@system-service io_uring_setup io_uring_enter "
                               r"io_uring_register$")
        nofile = int(re.search(r"(?m)^LimitNOFILE=(\d+)$", unit).group(1))
        self.assertGreater(nofile, 100_000)


# ptrace requests, to stop one shard thread while the rest of the engine runs.
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


def ptrace(request, tid):
    if libc.ptrace(request, tid, None, None) != 0:
        raise OSError(ctypes.get_errno(), "ptrace %#x on %d" % (request, tid))


class Notifications:
    """The engine's sd_notify datagrams, as systemd would receive them."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.events = []  # (monotonic time, message)

    def collect(self, seconds):
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                break
            self.events.append((time.monotonic(), data.decode()))

    def times(self, message, since=0.0):
        return [t for t, m in self.events if m == message and t >= since]


class Watchdog(unittest.TestCase):
    WATCHDOG_USEC = 1_000_000  # pings due every 0.5 s

    def setUp(self):
        self.d = mxg.Daemon(shards=2, domains=())
        self.addCleanup(self.d.cleanup)
        self.notify = Notifications(self.d.dir)
        self.addCleanup(self.notify.sock.close)
        self.d.start(env={"NOTIFY_SOCKET": self.notify.path, "WATCHDOG_USEC": str(self.WATCHDOG_USEC)})

    def shard_tids(self):
        task = "/proc/%d/task" % self.d.proc.pid
        tids = {}
        for t in os.listdir(task):
            with open(os.path.join(task, t, "comm")) as f:
                tids[f.read().strip()] = int(t)
        return {name: tid for name, tid in tids.items() if name.startswith("mxg-shard-")}

    def test_pings_while_shards_run_and_stop_when_one_is_stuck(self):
        self.notify.collect(3.0)
        self.assertEqual(self.notify.events[0][1], "READY=1")
        pings = self.notify.times("WATCHDOG=1")
        print("watchdog: %d pings in 3 s with WATCHDOG_USEC=%d" % (len(pings), self.WATCHDOG_USEC))
        self.assertGreaterEqual(len(pings), 4)
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertLess(max(gaps), 0.9)

        # Stop shard 1's thread alone (ptrace stops one thread, SIGSTOP would
        # stop the whole process): its heartbeat freezes, the main thread and
        # shard 0 go on, and the pings must stop.
        tid = self.shard_tids()["mxg-shard-1"]
        ptrace(PTRACE_SEIZE, tid)
        ptrace(PTRACE_INTERRUPT, tid)
        os.waitpid(tid, os.__dict__.get("__WALL", 0x40000000))
        stuck_at = time.monotonic()
        try:
            self.notify.collect(3.0)
        finally:
            ptrace(PTRACE_DETACH, tid)
        late = [t for t in self.notify.times("WATCHDOG=1", since=stuck_at) if t - stuck_at > 0.6]
        print("watchdog: %d pings in the 2.4 s after shard 1 stopped" % len(late))
        self.assertEqual(late, [])
        self.assertIsNone(self.d.proc.poll())  # only shard 1 was stopped

        resumed_at = time.monotonic()
        self.notify.collect(2.0)
        self.assertGreaterEqual(len(self.notify.times("WATCHDOG=1", since=resumed_at)), 2)

        self.assertEqual(self.d.stop(), 0)
        self.notify.collect(0.5)
        self.assertIn("STOPPING=1", [m for _, m in self.notify.events])
        log = self.d.read_log()
        self.assertRegex(log, r"engine\.watchdog_withheld shard=1 ")
        self.assertIn("engine.watchdog_resumed", log)

    def test_no_pings_without_watchdog_usec(self):
        self.d.stop()
        self.d.cleanup()
        d = mxg.Daemon(shards=1, domains=())
        self.addCleanup(d.cleanup)
        n = Notifications(d.dir)
        self.addCleanup(n.sock.close)
        d.start(env={"NOTIFY_SOCKET": n.path})
        n.collect(1.5)
        self.assertEqual([m for _, m in n.events], ["READY=1"])
        self.assertEqual(d.stop(), 0)


class ConsoleMenu(unittest.TestCase):
    """`mxguard console`, the menu the serial unit runs, driven through stdin."""

    def test_domains_and_quit(self):
        d = mxg.Daemon(domains=("menu.example",))
        self.addCleanup(d.cleanup)
        p = subprocess.run([mxg.MXGUARD, "--config", d.config, "console"], input="3\n\n6\n\nq\n",
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1) Status", p.stdout)
        self.assertIn("menu.example", p.stdout)   # 3: the domain list
        self.assertRegex(p.stdout, r"\d+ bundles?")  # 6: the stored rule bundles
        self.assertNotIn("Dashboard:", p.stdout)  # no [web]: no dashboard

    def test_dashboard_url_in_the_menu(self):
        d = mxg.Daemon(domains=(), top_extra='[web]\nlisten = ["127.0.0.1:8443"]\n')
        self.addCleanup(d.cleanup)
        p = subprocess.run([mxg.MXGUARD, "--config", d.config, "console"], input="q\n",
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Dashboard: https://mx.test.local:8443/", p.stdout)
        with open(d.config) as f:
            text = f.read()
        with open(d.config, "w") as f:
            f.write(text.replace('[web]\n', '[web]\npublic_url = "https://mx1.example.net"\n'))
        p = subprocess.run([mxg.MXGUARD, "--config", d.config, "console"], input="q\n",
                           capture_output=True, text=True, timeout=60)
        self.assertIn("Dashboard: https://mx1.example.net/", p.stdout)

    def test_end_of_input_leaves(self):
        d = mxg.Daemon(domains=())
        self.addCleanup(d.cleanup)
        p = subprocess.run([mxg.MXGUARD, "--config", d.config, "console"], input="",
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
