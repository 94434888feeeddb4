"""Integration-test harness: runs the real mxguardd and mxguard on loopback
with a temporary state directory (no mocks)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MXGUARDD = os.environ.get("MXGUARDD_BIN", os.path.join(ROOT, "build/src/engine/mxguardd"))
MXGUARD = os.environ.get("MXGUARD_BIN", os.path.join(ROOT, "build/src/console/mxguard"))
# libfaketime for threaded programs: LD_PRELOAD it with FAKETIME="+40d" to
# run a binary with its clock moved (package faketime).
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_test_cert(directory, name="mx.test.local"):
    """A self-signed certificate for STARTTLS tests (real OpenSSL, real key)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=DNS:%s,IP:127.0.0.1,IP:::1" % name],
                   check=True, capture_output=True)
    return cert, key


class Daemon:
    """One mxguardd with its own config and state dir."""

    def __init__(self, smtp_extra="", top_extra="", tls=False, shards=2, domains=("example.com",),
                 workdir=None, port=None, verdicts=False):
        """verdicts=False: the domains' thresholds are set out of reach, so
        tests of the SMTP engine are not greylisted for their bare test
        messages (the scanner still runs on every message)."""
        self.dir = workdir or tempfile.mkdtemp(prefix="mxg-it-")
        self.port = port or free_port()
        self.state = os.path.join(self.dir, "state")
        self.config = os.path.join(self.dir, "mxguard.toml")
        self.log_path = os.path.join(self.dir, "mxguardd.log")
        self.proc = None
        # Tests send bursts from one loopback address: the per-client rates
        # are off unless a test sets them (test_limits.py tests them).
        for key in ("max_connection_rate", "max_message_rate"):
            if key not in smtp_extra:
                smtp_extra = "%s = 0\n%s" % (key, smtp_extra)
        tls_section = ""
        if tls:
            self.cert, self.key = make_test_cert(self.dir)
            tls_section = '[tls]\ncertificate = "%s"\nprivate_key = "%s"\n' % (self.cert, self.key)
        with open(self.config, "w") as f:
            f.write('hostname = "mx.test.local"\nstate_dir = "%s"\n%s\n[smtp]\nlisten = ["127.0.0.1:%d"]\n'
                    'shards = %d\n%s\n%s' % (self.state, top_extra, self.port, shards, smtp_extra, tls_section))
        for d in domains:
            self.console("domain", "add", d, "--customer", "acme", "--backend", "127.0.0.1:2", "--active")
            if not verdicts:
                self.console("domain", "set", d, "reject_threshold=100", "quarantine_threshold=100",
                             "greylist_threshold=100")

    def console(self, *args, check=True, input=None):
        p = subprocess.run([MXGUARD, "--config", self.config, *args], capture_output=True, text=True,
                           input=input, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("mxguard %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
        return p

    def console_bytes(self, *args):
        return subprocess.run([MXGUARD, "--config", self.config, *args], capture_output=True, check=True,
                              timeout=60).stdout

    def queue(self):
        out = self.console("queue", "list", "--json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def start(self, wait=True, env=None):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([MXGUARDD, "--config", self.config], stdout=self.log, stderr=self.log,
                                     env=dict(os.environ, **(env or {})))
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("mxguardd exited with %s: %s" % (self.proc.returncode, self.read_log()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.recv(512)
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mxguardd did not start listening")

    def stop(self, timeout=20):
        """SIGTERM; returns the exit status."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_log(self, text, timeout=10):
        """The log so far, once it contains text (the engine writes its log
        in batches, so a line may trail the event it reports)."""
        deadline = time.time() + timeout
        while True:
            log = self.read_log()
            if text in log or time.time() > deadline:
                return log
            time.sleep(0.05)

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Raw:
    """A raw SMTP client for dialogue tests: send exact bytes, read replies."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=10):
        self.s = socket.create_connection((host, port), timeout=timeout,
                                          source_address=(source, 0) if source else None)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def line(self, text):
        self.send(text + "\r\n")

    def reply(self):
        """Reads one complete (possibly multiline) reply; returns (code, text)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise EOFError("connection closed; partial=%r" % self.buf)
                self.buf += chunk
            ln, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(ln.decode(errors="replace"))
            if len(ln) < 4 or ln[3:4] == b" ":
                break
        return int(lines[-1][:3]), "\n".join(lines)

    def expect(self, code):
        c, text = self.reply()
        if c != code:
            raise AssertionError("expected %d, got %r" % (code, text))
        return text

    def closed(self, timeout=5):
        """True when the server closes the connection (after any pending bytes)."""
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


OUR_HEADERS = (b"Received: ", b"Authentication-Results: ", b"X-MxGuard-Score: ")


def strip_received(raw):
    """The stored message split into the header fields we add on top (our
    Received line, then the scanner's Authentication-Results and
    X-MxGuard-Score) and the message exactly as the client sent it."""
    assert raw.startswith(b"Received: "), raw[:80]
    pos = 0
    first = True
    while first or raw[pos:].startswith(OUR_HEADERS[1:]):
        first = False
        while True:
            eol = raw.index(b"\r\n", pos)
            pos = eol + 2
            if raw[pos:pos + 1] not in (b" ", b"\t"):
                break
    return raw[:pos], raw[pos:]


def bayes_counts(daemon):
    """The Bayes model's (spam, ham) message counts, as `mxguard learn` reports
    them after learning a fresh probe message as ham (so each call adds one ham)."""
    path = os.path.join(daemon.dir, "probe%d.eml" % time.monotonic_ns())
    with open(path, "w") as f:
        f.write("From: a@b.test\r\nSubject: probe %s\r\n\r\nordinary words %s\r\n" % (path, path))
    out = daemon.console("learn", "ham", path).stdout
    m = re.search(r"holds (\d+) spam and (\d+) ham", out)
    return int(m.group(1)), int(m.group(2))


def push_bundle(daemon, directory, name, extra_rules):
    """Signs a bundle of the factory rules plus extra_rules (rule-file text)
    with a new key the daemon's state trusts, and pushes it; returns its path."""
    key = os.path.join(directory, "signing-%s.key" % name)
    pub = daemon.console("rules", "keygen", "-o", key).stdout.strip().splitlines()[-1].split()[-1]
    daemon.console("rules", "trust", "key-" + name, pub)
    rules = os.path.join(directory, "rules-" + name)
    shutil.copytree(os.path.join(ROOT, "rules"), rules)
    with open(os.path.join(rules, "99-%s.rules" % name), "w") as f:
        f.write(extra_rules)
    bundle = os.path.join(directory, name + ".bundle")
    daemon.console("rules", "build", rules, "-o", bundle, "--key", key, "--name", name)
    daemon.console("rules", "push", bundle)
    return bundle
