"""Per-client limits against the real mxguardd: exact per-client counting
(no shared counters), IPv6 clients counted per /64, connection and message
rates, a slowloris cut at command_timeout from the line's first byte, slow
DATA cut by min_data_rate, and a full connection table answered with 421."""
import os
import re
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402
from mxg import Daemon, Raw  # noqa: E402


def old_bucket(ip):
    """The counter the engine's old limiter gave an IPv4 address: FNV-1a of
    its four bytes, low 16 bits."""
    h = 1469598103934665603
    for b in socket.inet_aton(ip):
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h & 0xFFFF


def colliding_address(victim):
    for i in range(3, 1 << 24):
        ip = "127.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)
        if ip != victim and old_bucket(ip) == old_bucket(victim):
            return ip
    raise AssertionError("no collision found")


def greet(port, source=None, host="127.0.0.1"):
    """Connects and returns (client, first reply code, text)."""
    c = Raw(port, host=host, source=source)
    code, text = c.reply()
    return c, code, text


class PerClientCounts(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(smtp_extra="max_connections_per_ip = 5\n").start()

    def tearDown(self):
        self.d.stop()
        self.d.cleanup()

    def test_shared_counter_does_not_refuse_the_victim(self):
        victim = "127.0.0.2"
        attacker = colliding_address(victim)
        held = []
        try:
            for _ in range(5):
                c, code, _ = greet(self.d.port, attacker)
                self.assertEqual(code, 220)
                held.append(c)
            c, code, text = greet(self.d.port, attacker)
            self.assertEqual(code, 421, text)  # the attacker is at its own cap
            c.close()
            # Under the old scheme the victim shared the attacker's counter.
            c, code, text = greet(self.d.port, victim)
            self.assertEqual(code, 220, "victim %s refused while %s holds 5: %s" % (victim, attacker, text))
            c.close()
        finally:
            for c in held:
                c.close()


INNER = "--ipv6-inner"


class Ipv6Prefix(unittest.TestCase):
    """Runs in a network namespace of its own, where lo carries addresses of
    two /64 networks (root only)."""

    def test_a_64_is_one_client(self):
        if os.geteuid() != 0:
            self.skipTest("needs root for a network namespace")
        p = subprocess.run(["unshare", "--net", sys.executable, os.path.abspath(__file__), INNER],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("ipv6 per /64 ok", p.stdout)


def ipv6_inner():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    addrs = ["fd00:64::1", "fd00:64::2", "fd00:64::3", "fd00:64::4", "fd00:64::5", "fd00:65::1"]
    for a in addrs:
        subprocess.run(["ip", "-6", "addr", "add", a + "/64", "dev", "lo", "nodad"], check=True)
    port = mxg.free_port("fd00:64::1")
    d = Daemon(smtp_extra="max_connections_per_ip = 3\n", port=port)
    # Listen on the namespace's address (the harness writes 127.0.0.1).
    with open(d.config) as f:
        conf = f.read().replace('listen = ["127.0.0.1:%d"]' % port, 'listen = ["[fd00:64::1]:%d"]' % port)
    with open(d.config, "w") as f:
        f.write(conf)
    d.log = open(d.log_path, "ab")
    d.proc = subprocess.Popen([mxg.MXGUARDD, "--config", d.config], stdout=d.log, stderr=d.log)
    held = []
    try:
        deadline = time.time() + 30
        while True:
            try:
                c, code, _ = greet(port, "fd00:64::2", host="fd00:64::1")
                c.close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        time.sleep(0.3)  # the probe's close reaches the engine
        for src in ("fd00:64::2", "fd00:64::3", "fd00:64::4"):
            c, code, text = greet(port, src, host="fd00:64::1")
            assert code == 220, text
            held.append(c)
        c, code, text = greet(port, "fd00:64::5", host="fd00:64::1")
        assert code == 421 and "4.7.0" in text, "a fourth address of the same /64 got %r" % text
        c.close()
        c, code, text = greet(port, "fd00:65::1", host="fd00:64::1")
        assert code == 220, "another /64 refused: %r" % text
        c.close()
        print("ipv6 per /64 ok")
    finally:
        for c in held:
            c.close()
        d.stop()
        d.cleanup()


class Rates(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(smtp_extra="max_connection_rate = 10\nmax_message_rate = 5\n").start()
        # Daemon.start() probed once from 127.0.0.1; the tests use other addresses.

    def tearDown(self):
        self.d.stop()
        self.d.cleanup()

    def test_connection_rate(self):
        for i in range(10):
            c, code, text = greet(self.d.port, "127.0.1.1")
            self.assertEqual(code, 220, "connection %d: %s" % (i + 1, text))
            c.line("QUIT")
            c.expect(221)
            c.close()
        c, code, text = greet(self.d.port, "127.0.1.1")
        self.assertEqual(code, 421, text)
        self.assertIn("4.7.0", text)
        self.assertIn("per minute", text)
        self.assertTrue(c.closed())
        c, code, _ = greet(self.d.port, "127.0.1.2")  # another client is unaffected
        self.assertEqual(code, 220)
        c.close()
        # An allow-listed client address is exempt.
        self.d.console("list", "allow", "add", "ip", "127.0.1.1")
        c, code, text = greet(self.d.port, "127.0.1.1")
        self.assertEqual(code, 220, text)
        c.close()
        log = self.d.wait_log("reason=connection_rate")
        self.assertRegex(log, r"smtp.connection_refused shard=\d+ reason=connection_rate count=1 last_client=127.0.1.1")

    def test_message_rate(self):
        c, code, _ = greet(self.d.port, "127.0.2.1")
        self.assertEqual(code, 220)
        c.line("EHLO c.example")
        c.expect(250)
        for i in range(5):
            c.line("MAIL FROM:<>" if i == 0 else "MAIL FROM:<a@c.example>")  # the null sender counts too
            c.expect(250)
            c.line("RSET")
            c.expect(250)
        c.line("MAIL FROM:<a@c.example>")
        text = c.expect(451)
        self.assertIn("4.7.1", text)
        # A new connection is the same client.
        c2, code, _ = greet(self.d.port, "127.0.2.1")
        c2.line("EHLO c.example")
        c2.expect(250)
        c2.line("MAIL FROM:<a@c.example>")
        c2.expect(451)
        # Allow-listed: exempt.
        self.d.console("list", "allow", "add", "ip", "127.0.2.1")
        c2.line("MAIL FROM:<a@c.example>")
        c2.expect(250)
        c.close()
        c2.close()


class SlowClients(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(smtp_extra='command_timeout = "2s"\nmin_data_rate = 1000\n'
                                   'data_rate_window = "2s"\n').start()

    def tearDown(self):
        self.d.stop()
        self.d.cleanup()

    def trickle(self, c, data, every, limit):
        """Sends one byte every `every` seconds; returns (seconds until the
        server's reply, the reply) or fails after `limit` seconds."""
        start = time.monotonic()
        c.s.settimeout(every)
        for b in data:
            if time.monotonic() - start > limit:
                break
            try:
                c.s.sendall(bytes([b]))
            except OSError:
                break
            try:
                chunk = c.s.recv(4096)
                if chunk:
                    c.buf += chunk
                    break
                if not chunk:
                    break
            except socket.timeout:
                pass
        c.s.settimeout(5)
        code, text = c.reply()
        return time.monotonic() - start, code, text

    def in_data(self):
        """A session that has just been told 354."""
        c, _, _ = greet(self.d.port)
        for line, code in (("EHLO c.example", 250), ("MAIL FROM:<a@c.example>", 250),
                           ("RCPT TO:<u@example.com>", 250), ("DATA", 354)):
            c.line(line)
            c.expect(code)
        return c

    def test_slowloris_command_cut_at_command_timeout(self):
        c, code, _ = greet(self.d.port)
        self.assertEqual(code, 220)
        took, code, text = self.trickle(c, b"EHLO " + b"x" * 200 + b"\r\n", 0.4, 15)
        self.assertEqual(code, 421, text)
        self.assertIn("4.4.2", text)
        # command_timeout 2 s from the first byte, on a 200 ms tick.
        self.assertLess(took, 3.5, "a byte every 0.4 s held the line for %.1f s" % took)
        self.assertGreaterEqual(took, 1.8)
        self.assertTrue(c.closed())
        c.close()

    def test_idle_between_commands_still_times_out(self):
        c, _, _ = greet(self.d.port)
        c.line("EHLO c.example")
        c.expect(250)
        start = time.monotonic()
        text = c.expect(421)
        self.assertIn("4.4.2", text)
        self.assertLess(time.monotonic() - start, 3.5)
        c.close()

    def test_slow_data_cut_by_min_data_rate(self):
        c = self.in_data()
        # 10 bytes every 0.5 s = 20 bytes/s, well under 1000 bytes/s.
        start = time.monotonic()
        c.s.settimeout(0.5)
        reply = b""
        while time.monotonic() - start < 15 and not reply:
            try:
                c.s.sendall(b"Subject: x\n"[:10])
            except OSError:
                break
            try:
                reply = c.s.recv(4096)
            except socket.timeout:
                pass
        took = time.monotonic() - start
        self.assertTrue(reply.startswith(b"421 4.4.2"), reply)
        self.assertIn(b"too slowly", reply)
        self.assertLess(took, 3.5, "slow DATA held for %.1f s" % took)
        self.assertEqual(self.d.queue(), [])
        self.assertIn("smtp.data_too_slow", self.d.wait_log("smtp.data_too_slow"))

    def test_fast_data_is_not_cut(self):
        c = self.in_data()
        # 40 KiB over 3 s (two windows) at about 13 KiB/s: above the minimum.
        body = b"Subject: steady\r\n\r\n" + b"".join(b"line %05d of a steady sender\r\n" % i for i in range(1400))
        for i in range(0, len(body), 4096):
            c.send(body[i:i + 4096])
            time.sleep(0.3)
        c.send(b".\r\n")
        c.expect(250)
        c.close()


class FullTable(unittest.TestCase):
    """The fixed-file table of a shard is full: every client beyond it gets
    421 4.3.2, and the log says so once a second with a count."""

    def test_full_table_answers_421(self):
        # A descriptor limit below smtp.max_connections sizes the table (the
        # engine cannot raise a hard limit that the system caps).
        d = Daemon(smtp_extra="max_connections = 30000\nmax_connections_per_ip = 100000\n", shards=1)
        d.log = open(d.log_path, "ab")
        d.proc = subprocess.Popen(["prlimit", "--nofile=200:200", mxg.MXGUARDD, "--config", d.config],
                                  stdout=d.log, stderr=d.log)
        held = []
        try:
            d.wait_ready()
            log = d.wait_log("engine.fd_limit")
            m = re.search(r"engine.fd_limit limit=(\d+)", log)
            if not m or int(m.group(1)) != 200:
                self.skipTest("the descriptor limit was raised (privileged): %s" % (m and m.group(0)))
            time.sleep(0.3)
            sources = ["127.0.3.%d" % i for i in range(1, 250)]
            refused = []
            start = time.monotonic()
            for i in range(220):
                c, code, text = greet(d.port, sources[i % len(sources)])
                if code == 220:
                    held.append(c)
                else:
                    refused.append((code, text))
                    self.assertTrue(c.closed())
                    c.close()
            elapsed = time.monotonic() - start
            # 200 slots, a quarter kept back to answer (50): 150 sessions.
            self.assertEqual(len(held), 150)
            self.assertEqual(len(refused), 70)
            for code, text in refused:
                self.assertEqual(code, 421, text)
                self.assertIn("4.3.2", text)
            time.sleep(1.5)  # the last second's count is logged on a tick
            log = d.read_log()
            lines = re.findall(r"smtp.connection_refused shard=0 reason=capacity count=(\d+)", log)
            self.assertEqual(sum(int(n) for n in lines), 70, lines)
            self.assertLessEqual(len(lines), int(elapsed) + 3, lines)
            # A freed session makes room again.
            held.pop().close()
            time.sleep(0.5)
            c, code, text = greet(d.port, "127.0.4.1")
            self.assertEqual(code, 220, text)
            c.close()
        finally:
            for c in held:
                c.close()
            d.stop()
            d.cleanup()

    def test_total_cap_answers_421_4_3_2(self):
        d = Daemon(smtp_extra="max_connections = 4\nmax_connections_per_ip = 100\n").start()
        held = []
        try:
            time.sleep(0.3)
            for i in range(4):
                c, code, text = greet(d.port, "127.0.5.%d" % (i + 1))
                self.assertEqual(code, 220, text)
                held.append(c)
            c, code, text = greet(d.port, "127.0.5.9")
            self.assertEqual(code, 421)
            self.assertIn("4.3.2", text)
            c.close()
        finally:
            for c in held:
                c.close()
            d.stop()
            d.cleanup()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == INNER:
        ipv6_inner()
        sys.exit(0)
    unittest.main(verbosity=2)
