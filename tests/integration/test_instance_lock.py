"""One engine per state dir and per listen address: a second mxguardd on the
same state dir or on a port another process listens on (even with
SO_REUSEPORT) is refused; the lock dies with the process (kill -9)."""
import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mxg import MXGUARDD, Daemon, free_port  # noqa: E402


def run_second(config, timeout=60):
    """Starts another mxguardd on config; returns (exit code, or None when it
    got ready instead, its output, the process if still running)."""
    out_path = config + ".second.log"
    with open(out_path, "wb") as out:
        p = subprocess.Popen([MXGUARDD, "--config", config], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    while time.time() < deadline:
        code = p.poll()
        with open(out_path, errors="replace") as f:
            text = f.read()
        if code is not None:
            return code, text, None
        if "engine.ready" in text:
            return None, text, p
        time.sleep(0.05)
    return None, text, p


def banners(port, n=40):
    """Which host name greets each of n connections."""
    seen = {}
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            name = s.recv(512).split()[1].decode()
        seen[name] = seen.get(name, 0) + 1
    return seen


class OneEngine(unittest.TestCase):
    def setUp(self):
        self.daemons = []
        self.stray = []

    def tearDown(self):
        for p in self.stray:
            p.kill()
            p.wait()
        for d in self.daemons:
            d.cleanup()

    def daemon(self, **kw):
        d = Daemon(**kw)
        self.daemons.append(d)
        return d

    def pid_file(self, d):
        with open(os.path.join(d.state, "mxguardd.pid")) as f:
            return f.read().strip()

    def test_same_state_dir_refused_naming_the_pid(self):
        d = self.daemon().start()
        code, out, stray = run_second(d.config)
        if stray:
            self.stray.append(stray)
            self.fail("a second engine on the same state dir started (pid %d)" % stray.pid)
        self.assertEqual(code, 1, out)
        self.assertIn("state_dir %s is in use by mxguardd pid %d" % (d.state, d.proc.pid), out)
        self.assertEqual(self.pid_file(d), str(d.proc.pid))
        # The console shares the state dir and takes no lock.
        d.console("domain", "list")
        self.assertEqual(d.stop(), 0)

    def test_other_state_dir_same_port_refused(self):
        first = self.daemon().start()
        second = self.daemon(port=first.port)
        with open(second.config) as f:
            text = f.read()
        with open(second.config, "w") as f:
            f.write(text.replace('hostname = "mx.test.local"', 'hostname = "mx2.test.local"'))
        code, out, stray = run_second(second.config)
        if stray:
            self.stray.append(stray)
            split = banners(first.port)
            self.fail("a second engine shares port %d: connections per engine %s" % (first.port, split))
        self.assertEqual(code, 1, out)
        self.assertIn("cannot listen on 127.0.0.1:%d (smtp.listen): in use by another process" % first.port, out)
        self.assertEqual(banners(first.port, 10), {"mx.test.local": 10})
        self.assertEqual(first.stop(), 0)

    def test_ipv6_port_shared_with_reuseport_refused(self):
        # Another program listening with SO_REUSEPORT would share the port silently.
        d = self.daemon()
        port = free_port("::1")
        other = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.addCleanup(other.close)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("::1", port))
        other.listen(8)
        with open(d.config) as f:
            text = f.read()
        with open(d.config, "w") as f:
            f.write(text.replace('listen = ["127.0.0.1:%d"]' % d.port,
                                 'listen = ["127.0.0.1:%d", "[::1]:%d"]' % (d.port, port)))
        code, out, stray = run_second(d.config)
        if stray:
            self.stray.append(stray)
            self.fail("the engine shares [::1]:%d with another socket" % port)
        self.assertEqual(code, 1, out)
        self.assertIn("cannot listen on [::1]:%d (smtp.listen): in use by another process" % port, out)

    def test_restart_after_kill9(self):
        d = self.daemon().start()
        first_pid = d.proc.pid
        d.kill9()
        # The file still names the dead engine; its lock died with it.
        self.assertEqual(self.pid_file(d), str(first_pid))
        d.start()
        self.assertEqual(self.pid_file(d), str(d.proc.pid))
        code, out, stray = run_second(d.config)
        if stray:
            self.stray.append(stray)
            self.fail("a second engine started after the restart")
        self.assertIn("in use by mxguardd pid %d" % d.proc.pid, out)
        self.assertEqual(d.stop(), 0)
        # A clean stop releases it too.
        d.start()
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
