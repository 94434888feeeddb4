"""Monitoring (issue 16): /metrics scraped over real HTTP before and after
a small load (smtplib clients, an aiosmtpd backend, a real Knot DNS), the
counters moving by exactly what was sent, the text checked by a strict
exposition-format parser; `mxguard status` with the engine running and
stopped; the start-up warning when dns.servers does not answer."""
import json
import math
import os
import re
import smtplib
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402
from knot import Knot  # noqa: E402
from test_delivery import Backend  # noqa: E402

EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_value(text):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", text):
        raise AssertionError("bad sample value %r" % text)
    return float(text)


def parse_labels(text):
    out = {}
    for m in re.finditer(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"', text or ""):
        out[m.group(1)] = m.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
    return out


def parse_exposition(text):
    """Strict reading of the Prometheus text format 0.0.4: every line is a
    HELP, a TYPE or a sample; HELP then TYPE precede a family's samples and
    appear once; counters end in _total; histograms have cumulative buckets
    ending in +Inf equal to _count, and a _sum. Returns {(name, frozenset
    of labels): value} and the families' types."""
    assert text.endswith("\n"), "the text must end with a newline"
    samples, types, helps = {}, {}, set()
    current = None
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert re.fullmatch(NAME, name) and name not in helps, line
            helps.add(name)
            current = name
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            assert len(parts) == 4 and parts[3] in TYPES, line
            name = parts[2]
            assert name == current and name not in types, "TYPE %s without its HELP right before" % name
            types[name] = parts[3]
            continue
        assert not line.startswith("#") and line, "stray line %r" % line
        m = SAMPLE.match(line)
        assert m, "malformed sample line %r" % line
        name, labels, value = m.group(1), parse_labels(m.group(2)), parse_value(m.group(3))
        family = name
        if current and types.get(current) == "histogram":
            assert name in (current + "_bucket", current + "_sum", current + "_count"), line
            family = current
        assert family == current, "sample %s outside its family %s" % (name, current)
        assert name.startswith("mxguard_"), name
        key = (name, frozenset(labels.items()))
        assert key not in samples, "duplicate sample %r" % line
        samples[key] = value
    for name, kind in types.items():
        if kind == "counter":
            assert name.endswith("_total"), "counter %s must end in _total" % name
        if kind == "histogram":
            buckets = sorted(((parse_value(dict(k[1])["le"]), v) for k, v in samples.items()
                              if k[0] == name + "_bucket"), key=lambda x: x[0])
            assert buckets and buckets[-1][0] == math.inf, "%s lacks le=\"+Inf\"" % name
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), "%s buckets are not cumulative" % name
            assert samples[(name + "_count", frozenset())] == counts[-1]
            assert (name + "_sum", frozenset()) in samples
    return samples, types


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


class MetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mxg-metrics-")
        cls.knot = Knot(cls.tmp, {"example.com": ["@ MX 10 mx.example.com.", "mx A 127.0.0.1"]})
        cls.backend = Backend()
        cls.metrics_port = mxg.free_port()
        cls.metrics_port6 = mxg.free_port("::1")
        top = ('[dns]\nservers = ["127.0.0.1:%d"]\ntimeout = "2s"\n[metrics]\nlisten = ["127.0.0.1:%d", "[::1]:%d"]\n'
               '[delivery]\nretry_interval = "2s"\n' % (cls.knot.port, cls.metrics_port, cls.metrics_port6))
        cls.d = mxg.Daemon(top_extra=top, smtp_extra='command_timeout = "2s"\n',
                           domains=("example.com", "strict.test", "list.test", "paused.test", "grey.test"))
        cls.d.console("domain", "set", "grey.test", "greylist_threshold=5")
        cls.d.console("domain", "suspend", "paused.test")
        cls.d.console("list", "block", "add", "sender-domain", "evil.test")
        cls.d.console("domain", "set", "example.com", "backend=127.0.0.1:%d" % cls.backend.port)
        cls.d.console("domain", "set", "strict.test", "reject_threshold=5", "quarantine_threshold=5",
                      "greylist_threshold=5")
        if cls.d.console("domain", "set", "list.test", "recipients=list", check=False).returncode != 0:
            cls.d.console("domain", "set", "list.test", "recipients=list", "--force")  # an empty list warns
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.cleanup()
        cls.backend.stop()
        cls.knot.stop()

    def scrape(self, url=None):
        url = url or "http://127.0.0.1:%d/metrics" % self.metrics_port
        with urllib.request.urlopen(url, timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertTrue(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
            return parse_exposition(r.read().decode())[0]

    def wait_metric(self, predicate, timeout=30):
        deadline = time.time() + timeout
        while True:
            s = self.scrape()
            if predicate(s) or time.time() > deadline:
                return s
            time.sleep(0.1)

    def status(self, *args):
        p = self.d.console("status", *args, check=False)
        return p.returncode, p.stdout, p.stderr

    def test_1_counters_move_with_load(self):
        started = time.monotonic()
        before = self.scrape()
        for name in ("mxguard_scan_duration_seconds", "mxguard_commit_duration_seconds"):
            self.assertIn((name + "_bucket", frozenset({("le", "+Inf")})), before)
        self.assertEqual(value(before, "mxguard_shards"), 2)
        self.assertEqual(len([k for k in before if k[0] == "mxguard_rules_bundle_info"]), 1)
        info = dict(next(k for k in before if k[0] == "mxguard_rules_bundle_info")[1])
        self.assertRegex(info["digest"], r"^[0-9a-f]{64}$")

        delivered, relay, unknown, rejected, blocked, suspended, timeouts = 3, 2, 2, 1, 1, 1, 1
        greylisted, bounced = 1, 1
        relay_tricks, syntax = 2, 1
        sessions = 0
        for i in range(delivered):
            with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
                s.sendmail("alice@client.test", ["bob%d@example.com" % i],
                           b"Subject: hello %d\r\nMessage-ID: <m%d@client.test>\r\n\r\nhello\r\n" % (i, i))
            sessions += 1
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
            s.ehlo("client.test")
            s.mail("alice@client.test")
            for i in range(relay):
                self.assertEqual(s.rcpt("x%d@elsewhere.test" % i)[0], 550)
            for i in range(unknown):
                self.assertEqual(s.rcpt("nobody%d@list.test" % i)[0], 550)
            for i in range(suspended):
                self.assertEqual(s.rcpt("x%d@paused.test" % i)[0], 450)
            # Refused inside the session, before any policy lookup: a relay
            # trick in the address, and a syntax error.
            for i in range(relay_tricks):
                self.assertEqual(s.rcpt("x%d%%elsewhere.test@example.com" % i)[0], 550)
            for i in range(syntax):
                self.assertEqual(s.docmd("RCPT TO:<bad address%d>" % i)[0], 501)
            s.rset()
            for i in range(blocked):
                self.assertEqual(s.mail("spammer%d@evil.test" % i)[0], 550)
                s.rset()
        sessions += 1
        # A client that says nothing is dropped after smtp.command_timeout.
        for i in range(timeouts):
            raw = mxg.Raw(self.d.port)
            raw.expect(220)
            raw.expect(421)
            raw.close()
            sessions += 1
        virus = ("Subject: invoice\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
                 "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
                 "Content-Type: application/octet-stream\r\n"
                 "Content-Disposition: attachment; filename=\"eicar.com\"\r\n\r\n%s\r\n--b--\r\n" % EICAR)
        for rcpt, count, code in (("ceo@strict.test", rejected, 550), ("ceo@grey.test", greylisted, 451)):
            for i in range(count):
                with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
                    with self.assertRaises(smtplib.SMTPDataError) as e:
                        s.sendmail("mallory@client.test", [rcpt], virus.encode())
                    self.assertEqual(e.exception.smtp_code, code)
                sessions += 1
        # The backend refuses "unknown*" with 550: a bounce (from the null
        # sender, so no DSN is queued).
        for i in range(bounced):
            with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
                s.sendmail("", ["unknown%d@example.com" % i], b"Subject: to nobody\r\n\r\nx\r\n")
            sessions += 1
        self.backend.rec.wait(delivered)

        def delta(s, name, **labels):
            return value(s, name, **labels) - value(before, name, **labels)

        after = self.wait_metric(lambda s: delta(s, "mxguard_delivery_results_total", result="delivered") >= delivered
                                 and delta(s, "mxguard_delivery_results_total", result="bounced") >= bounced
                                 and value(s, "mxguard_queue_messages") == 0
                                 and value(s, "mxguard_sessions") == 0)
        self.assertEqual(delta(after, "mxguard_delivery_results_total", result="delivered"), delivered)
        self.assertEqual(delta(after, "mxguard_delivery_results_total", result="deferred"), 0)
        self.assertEqual(delta(after, "mxguard_delivery_results_total", result="bounced"), bounced)
        self.assertEqual(delta(after, "mxguard_connections_accepted_total"), sessions)
        self.assertEqual(delta(after, "mxguard_messages_total", action="deliver"), delivered + bounced)
        self.assertEqual(delta(after, "mxguard_messages_total", action="reject"), rejected)
        self.assertEqual(delta(after, "mxguard_messages_total", action="greylist"), greylisted)
        self.assertEqual(delta(after, "mxguard_messages_total", action="quarantine"), 0)
        self.assertEqual(delta(after, "mxguard_refusals_total", reason="relay_denied"), relay + relay_tricks)
        self.assertEqual(delta(after, "mxguard_refusals_total", reason="protocol_error"), syntax)
        self.assertEqual(delta(after, "mxguard_refusals_total", reason="unknown_recipient"), unknown)
        self.assertEqual(delta(after, "mxguard_refusals_total", reason="rejected_spam"), rejected)
        self.assertEqual(delta(after, "mxguard_refusals_total", reason="blocked"), blocked)
        self.assertEqual(delta(after, "mxguard_refusals_total", reason="suspended"), suspended)
        self.assertEqual(delta(after, "mxguard_refusals_total", reason="timeout"), timeouts)
        self.assertEqual(delta(after, "mxguard_refusals_total", reason="greylisted"), greylisted)
        self.assertEqual(delta(after, "mxguard_refusals_total", reason="rate_limited"), 0)
        # The IPv6 listener serves the same counters.
        six = self.scrape("http://[::1]:%d/metrics" % self.metrics_port6)
        self.assertEqual(value(six, "mxguard_refusals_total", reason="relay_denied"),
                         value(after, "mxguard_refusals_total", reason="relay_denied"))
        self.assertEqual(delta(after, "mxguard_scan_duration_seconds_count"), delivered + rejected + greylisted + bounced)
        self.assertGreater(delta(after, "mxguard_scan_duration_seconds_sum"), 0)
        # Each stored message was in a commit; delivery results are commits too.
        self.assertGreaterEqual(delta(after, "mxguard_commit_duration_seconds_count"), 2)
        # Tracking events that find no batch to ride in are committed on
        # their own, at most about once a second per shard.
        event_commits = 2 * (int(time.monotonic() - started) + 2)
        self.assertLessEqual(delta(after, "mxguard_commit_duration_seconds_count"),
                             2 * delivered + 4 + event_commits)
        self.assertEqual(value(after, "mxguard_queue_messages"), 0)
        self.assertEqual(value(after, "mxguard_queue_oldest_age_seconds"), 0)
        for shard in ("0", "1"):
            self.assertLess(value(after, "mxguard_shard_loop_lag_seconds", shard=shard), 5)

    def test_2_only_get_metrics(self):
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen("http://127.0.0.1:%d/" % self.metrics_port, timeout=10)
        self.assertEqual(e.exception.code, 404)

    def test_3_status_running_then_stopped(self):
        code, out, err = self.status()
        self.assertEqual(code, 0, out + err)
        self.assertRegex(out, r"^Engine: active  shards: 2  queue: 0\n")
        self.assertIn("  pid:       %d " % self.d.proc.pid, out)
        self.assertIn("127.0.0.1:%d answers" % self.knot.port, out)
        code, out, err = self.status("--json")
        self.assertEqual(code, 0, err)
        j = json.loads(out)
        self.assertEqual(len(out.strip().splitlines()), 1)
        self.assertEqual((j["ok"], j["engine"]["running"], j["engine"]["pid"], j["shards"]),
                         (True, True, self.d.proc.pid, 2))
        self.assertEqual(j["queue"]["messages"], 0)
        self.assertTrue(j["dns"]["reachable"])
        self.assertEqual(j["bundle"]["source"], "engine")
        self.assertGreater(j["disk"]["free_bytes"], 0)
        self.assertEqual(j["attention"], [])

        # A message to a backend that is down stays queued: status shows it.
        self.d.console("domain", "set", "strict.test", "reject_threshold=100", "quarantine_threshold=100",
                       "greylist_threshold=100", "backend=127.0.0.1:2")
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
            s.sendmail("alice@client.test", ["held@strict.test"], b"Subject: held\r\n\r\nheld\r\n")
        code, out, err = self.status("--json")
        j = json.loads(out)
        self.assertEqual(j["queue"]["messages"], 1)
        self.assertIsNotNone(j["queue"]["oldest_received_ms"])
        s = self.wait_metric(lambda s: value(s, "mxguard_queue_messages") == 1
                             and value(s, "mxguard_delivery_results_total", result="deferred") >= 1)
        self.assertEqual(value(s, "mxguard_queue_messages"), 1)
        self.assertEqual(value(s, "mxguard_delivery_results_total", result="deferred"), 1)  # backend down

        self.assertEqual(self.d.stop(), 0)
        code, out, err = self.status()
        self.assertNotEqual(code, 0)
        self.assertRegex(out, r"^Engine: down  shards: 0  queue: 1\n")
        self.assertIn("ATTENTION: engine is not running", out)
        code, out, err = self.status("--json")
        self.assertNotEqual(code, 0)
        j = json.loads(out)
        self.assertEqual((j["ok"], j["engine"]["running"], j["engine"]["pid"]), (False, False, None))
        self.assertIn("engine is not running", j["attention"])
        self.assertEqual(j["bundle"]["source"], "stored")
        self.assertFalse(os.path.exists(os.path.join(self.d.state, "engine-status.json")))
        # The reachable resolver got its confirmation line, and no warning.
        log = self.d.read_log()
        self.assertIn("dns.reachable", log)
        self.assertNotIn("dns.unreachable", log)
        # --as is refused: status is the operator's.
        p = self.d.console("--as", "nobody", "status", check=False)
        self.assertEqual(p.returncode, 2)


class LimitRefusalsTest(unittest.TestCase):
    def test_connection_and_message_limits(self):
        port = mxg.free_port()
        d = mxg.Daemon(top_extra='[metrics]\nlisten = ["127.0.0.1:%d"]\n' % port,
                       smtp_extra="max_connections_per_ip = 1\nmax_message_rate = 2\n", shards=1)
        self.addCleanup(d.cleanup)
        d.start()
        url = "http://127.0.0.1:%d/metrics" % port

        def scrape():
            with urllib.request.urlopen(url, timeout=10) as r:
                return parse_exposition(r.read().decode())[0]

        def refusals(reason):
            return value(scrape(), "mxguard_refusals_total", reason=reason)

        # The harness's readiness probe must be gone: it would hold the one place.
        deadline = time.time() + 10
        while value(scrape(), "mxguard_sessions") != 0 and time.time() < deadline:
            time.sleep(0.05)
        with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
            s.ehlo("client.test")
            second = mxg.Raw(d.port)
            second.expect(421)  # one connection per address
            second.close()
            for i in range(2):
                self.assertEqual(s.mail("a%d@client.test" % i)[0], 250)
                s.rset()
            self.assertEqual(s.mail("a9@client.test")[0], 451)  # the third MAIL in a minute
        self.assertEqual(refusals("connection_limit"), 1)
        self.assertEqual(refusals("rate_limited"), 1)
        self.assertEqual(d.stop(), 0)


class MetricsListenTest(unittest.TestCase):
    def test_port_in_use_stops_the_start(self):
        import socket
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        self.addCleanup(holder.close)
        port = holder.getsockname()[1]
        d = mxg.Daemon(top_extra='[metrics]\nlisten = ["127.0.0.1:%d"]\n' % port)
        self.addCleanup(d.cleanup)
        d.start(wait=False)
        self.assertEqual(d.proc.wait(timeout=60), 1)
        d.log.close()
        self.assertIn("cannot listen on 127.0.0.1:%d (metrics.listen)" % port, d.read_log())


class DnsWarningTest(unittest.TestCase):
    def test_warns_when_dns_servers_do_not_answer(self):
        closed = mxg.free_port()  # nothing listens on it (UDP or TCP)
        d = mxg.Daemon(top_extra='[dns]\nservers = ["127.0.0.1:%d"]\n' % closed)
        self.addCleanup(d.cleanup)
        d.start()
        log = d.wait_log("dns.unreachable", timeout=15)
        lines = [l for l in log.splitlines() if "dns.unreachable" in l]
        self.assertEqual(len(lines), 1, log)
        self.assertIn("servers=127.0.0.1:%d" % closed, lines[0])
        self.assertIn("dns.servers does not answer", lines[0])
        code = d.console("status", check=False)
        self.assertNotEqual(code.returncode, 0)
        self.assertIn("ATTENTION: DNS: none of dns.servers answers", code.stdout)
        self.assertEqual(d.stop(), 0)

    def test_no_warning_without_network_checks(self):
        closed = mxg.free_port()
        d = mxg.Daemon(top_extra='[dns]\nservers = ["127.0.0.1:%d"]\n[scan]\nnetwork_checks = false\n' % closed)
        self.addCleanup(d.cleanup)
        d.start()
        # The status file is written before the DNS check would run; wait for a second write.
        path = os.path.join(d.state, "engine-status.json")
        deadline = time.time() + 15
        first = None
        while time.time() < deadline:
            if os.path.exists(path):
                m = os.stat(path).st_mtime_ns
                first = first or m
                if m != first:
                    break
            time.sleep(0.05)
        self.assertNotIn("dns.unreachable", d.read_log())
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
