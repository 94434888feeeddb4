#!/usr/bin/python3
"""`bash .ci/demo` as a new user runs it (issue 16): the demo answers a message
with a 250 at once (no network checks in the embedded configuration), its sink
stores the message in the Maildir it names, a second run on the same state
works, and stopping the demo (Ctrl-C or SIGTERM) leaves nothing running.

The demo listens on its fixed ports (2525, 2526): as root the test runs in a
network namespace of its own, so another demo or test on the machine does not
matter; otherwise it needs those ports free."""
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from email.message import EmailMessage
from email.utils import make_msgid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402

INNER = "--demo-inner"
# What the 250 may take on a loaded 2-core CI machine. With a DNS check on a
# resolver that does not answer it took 9.6 s; on a quiet machine it is a few ms.
ACCEPT_BOUND = 1.0
# From the 250 to the file in the sink's Maildir.
DELIVERY_BOUND = 2.0


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def greets(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(512).startswith(b"220")
    except OSError:
        return False


def processes_in(path):
    """PIDs of processes whose command line or working directory is under path."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink("/proc/%s/cwd" % pid)
        except OSError:
            continue
        if path in cmd or cwd == path or cwd.startswith(path + "/"):
            found.append((int(pid), cmd))
    return found


class DemoRun:
    """One `bash .ci/demo` in its own session, its output collected."""

    def __init__(self, work):
        env = dict(os.environ, MXGUARD_DEMO_SKIP_SETUP="1", MXGUARD_DEMO_DIR=work,
                   MXGUARD_DEMO_BUILD=os.path.dirname(os.path.dirname(os.path.dirname(
                       os.path.abspath(mxg.MXGUARDD)))))
        env.pop("MXGUARD_CONFIG", None)
        self.proc = subprocess.Popen(["bash", os.path.join(mxg.ROOT, ".ci/demo")], env=env, cwd=work,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.out = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for chunk in iter(lambda: self.proc.stdout.read1(4096), b""):
            self.out += chunk

    def text(self):
        return self.out.decode(errors="replace")

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("the demo exited with %s:\n%s" % (self.proc.returncode, self.text()))
            if greets(2525) and "== MxGuard demo" in self.text():
                return
            time.sleep(0.1)
        raise AssertionError("the demo did not answer on 127.0.0.1:2525:\n" + self.text())

    def stop(self, sig, group, timeout=40):
        if group:
            os.killpg(self.proc.pid, sig)  # what Ctrl-C in its terminal does
        else:
            self.proc.send_signal(sig)  # the script alone: its trap must stop the rest
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.reader.join(timeout=5)

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def send_one(tag):
    """Sends one message to the demo's postmaster; returns the seconds from
    the start of the transaction to the 250 after DATA."""
    m = EmailMessage()
    m["From"] = "New User <new.user@example.org>"
    m["To"] = "postmaster@demo.example"
    m["Subject"] = "demo message " + tag
    m["Message-ID"] = make_msgid(domain="example.org")
    m["Date"] = "Mon, 7 Dec 2026 12:00:00 +0000"
    m.set_content("Hello, this is a first message through MxGuard.\nRegards,\nthe new user\n")
    with smtplib.SMTP("127.0.0.1", 2525, timeout=30) as s:
        s.ehlo("client.example.org")
        t0 = time.monotonic()
        refused = s.send_message(m, from_addr="new.user@example.org", to_addrs=["postmaster@demo.example"])
        took = time.monotonic() - t0
    assert not refused, refused
    return took


def wait_in_maildir(maildir, tag, timeout):
    """The Maildir file holding the message tagged tag, once it is in new/."""
    deadline = time.monotonic() + timeout
    new = os.path.join(maildir, "new")
    while True:
        for name in os.listdir(new) if os.path.isdir(new) else []:
            with open(os.path.join(new, name), "rb") as f:
                if ("demo message " + tag).encode() in f.read():
                    return name
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def assert_nothing_left(work):
    """No process of the demo is left and its ports are free again."""
    deadline = time.time() + 10
    while True:
        left = processes_in(work)
        ports = [p for p in (2525, 2526) if listening(p)]
        if not left and not ports:
            return
        if time.time() > deadline:
            raise AssertionError("after the demo stopped: processes %s, ports in use %s" % (left, ports))
        time.sleep(0.1)


def run_demo_checks():
    work = tempfile.mkdtemp(prefix="mxg-demo-")
    maildir = os.path.join(work, "mxguard-state", "demo-mail")
    runs = []
    try:
        # First run, on a fresh state dir; stopped like Ctrl-C in its terminal.
        run = DemoRun(work)
        runs.append(run)
        run.wait_ready()
        out = run.text()
        for want in ("swaks --server 127.0.0.1:2525 --to postmaster@demo.example",
                     "track --recipient postmaster@demo.example", maildir + "/new/"):
            assert want in out, "the demo does not print %r:\n%s" % (want, out)
        took = send_one("one")
        assert took < ACCEPT_BOUND, "the 250 took %.3f s (bound %.1f s)" % (took, ACCEPT_BOUND)
        t0 = time.monotonic()
        name = wait_in_maildir(maildir, "one", DELIVERY_BOUND)
        assert name, "message one not in %s/new within %.1f s:\n%s" % (maildir, DELIVERY_BOUND, run.text())
        print("run 1: 250 after %.3f s, in the Maildir %.3f s later" % (took, time.monotonic() - t0))
        # The command the demo tells a new user to try gets a 250 too.
        if shutil.which("swaks"):
            p = subprocess.run(["swaks", "--server", "127.0.0.1:2525", "--to", "postmaster@demo.example"],
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, "swaks as the demo prints it failed:\n" + p.stdout + p.stderr
            assert "<-  250" in p.stdout.split("DATA")[-1], p.stdout
        rc = run.stop(signal.SIGINT, group=True)
        assert rc == 130, "the demo exited with %s after Ctrl-C:\n%s" % (rc, run.text())
        assert_nothing_left(work)

        # Second run on the same state dir (the domain exists, the Maildir holds
        # mail); stopped by a SIGTERM to the script alone, whose trap stops the rest.
        run = DemoRun(work)
        runs.append(run)
        run.wait_ready()
        took = send_one("two")
        assert took < ACCEPT_BOUND, "second run: the 250 took %.3f s" % took
        assert wait_in_maildir(maildir, "two", DELIVERY_BOUND), \
            "second run: message two not delivered:\n" + run.text()
        assert wait_in_maildir(maildir, "one", 0), "the first run's message is gone"
        print("run 2: 250 after %.3f s" % took)
        rc = run.stop(signal.SIGTERM, group=False)
        assert rc == 143, "the demo exited with %s after SIGTERM:\n%s" % (rc, run.text())
        assert_nothing_left(work)
        print("demo ok")
    finally:
        for r in runs:
            r.kill()
        shutil.rmtree(work, ignore_errors=True)


class Demo(unittest.TestCase):
    def test_demo_delivers_to_its_sink(self):
        if os.geteuid() == 0 and shutil.which("unshare"):
            p = subprocess.run(["unshare", "--net", sys.executable, os.path.abspath(__file__), INNER],
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("demo ok", p.stdout)
            sys.stdout.write(p.stdout)
            return
        if not (port_free(2525) and port_free(2526)):
            self.skipTest("ports 2525/2526 are in use and a network namespace needs root")
        run_demo_checks()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == INNER:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        run_demo_checks()
        sys.exit(0)
    unittest.main()
