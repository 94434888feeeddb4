#!/usr/bin/python3
"""`mxguard backup --with-spools` under load (issue 16): an engine receives
mail from concurrent clients while the backup runs; its backends are down, so
everything it accepted is queued. The archive is restored into a new state
dir, an engine is started on it, and every customer, domain, user, recipient,
list entry and the pushed rule bundle is there, and every message that got a
250 before the backup started is delivered to a real backend (aiosmtpd) once
that backend is up."""
import json
import re
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from aiosmtpd.controller import Controller

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402
from mxg import Daemon  # noqa: E402

SENDERS = 4             # concurrent clients
PER_SENDER = 80         # at most this many messages each
LOAD_SECONDS = 25       # and for at most this long
QUEUED_FIRST = 12       # messages queued (backend down) before the load starts
DOMAINS = ("a.example", "b.example", "c.example")


class Collect:
    """aiosmtpd handler: the subjects of what it received."""

    def __init__(self):
        self.subjects = set()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        for line in envelope.content.split(b"\r\n"):
            if line.startswith(b"Subject: "):
                with self.lock:
                    self.subjects.add(line[9:].decode())
                break
        return "250 OK"

    def got(self):
        with self.lock:
            return set(self.subjects)


def message(tag, rcpt):
    return ("From: load@sender.example\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@sender.example>\r\n"
            "Date: Mon, 7 Dec 2026 12:00:00 +0000\r\n\r\nbackup under load, %s\r\n" % (rcpt, tag, tag, tag))


def jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class BackupUnderLoad(unittest.TestCase):
    def setUp(self):
        self.sink_port = mxg.free_port()
        self.d = Daemon(domains=(), shards=2, top_extra='\n[delivery]\nretry_interval = "2s"\n')
        self.tmp = tempfile.mkdtemp(prefix="mxg-bkl-")
        self.restored = None
        self.sink = None

    def tearDown(self):
        for d in (self.d, self.restored):
            if d:
                d.stop()
                d.cleanup()
        if self.sink:
            self.sink.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def populate(self):
        """Several customers, domains, users, recipients, lists and a pushed bundle."""
        c = self.d.console
        backend = "127.0.0.1:%d" % self.sink_port  # nothing listens there until the restore
        c("customer", "add", "acme")
        c("customer", "add", "globex")
        c("domain", "add", "a.example", "--customer", "acme", "--backend", backend, "--active")
        c("domain", "add", "b.example", "--customer", "acme", "--backend", backend, "--active")
        c("domain", "add", "c.example", "--customer", "globex", "--backend", backend, "--recipients", "list",
          "--active", "--force")
        c("domain", "add", "pending.example", "--customer", "globex", "--backend", backend)
        for d in DOMAINS:
            c("domain", "set", d, "reject_threshold=100", "quarantine_threshold=100", "greylist_threshold=100")
        c("recipient", "add", "alice@c.example", "bob@c.example")
        c("user", "add", "ops", "--role", "operator", "--password-file", "-", input="ops-secret-1\n")
        c("user", "add", "acme-admin", "--role", "customer-admin", "--customer", "acme", "--password-file", "-",
          input="acme-secret-1\n")
        c("user", "add", "pm-b", "--role", "postmaster", "--domain", "b.example", "--password-file", "-",
          input="pm-secret-1\n")
        c("list", "allow", "add", "ip", "192.0.2.77")
        c("list", "block", "add", "sender", "spammer@bad.example")
        c("list", "block", "add", "sender-domain", "worse.example", "--domain", "a.example")
        mxg.push_bundle(self.d, self.tmp, "backup-pushed",
                        "rule BACKUP_PUSHED\n  description only in the pushed bundle\n  score 0.1\n"
                        "  target subject\n  pattern /backup-bundle-probe/i\n")

    def snapshot(self, console):
        """What the console shows of the config, for comparing before and after."""
        return {
            "customers": console("customer", "list", "--json").stdout,
            "domains": console("domain", "list", "--json").stdout,
            "users": console("user", "list", "--json").stdout,
            "recipients": console("recipient", "list", "--domain", "c.example", "--json").stdout,
            "allow": console("list", "allow", "show", "--json").stdout,
            "block": console("list", "block", "show", "--json").stdout,
            "block_a": console("list", "block", "show", "--domain", "a.example", "--json").stdout,
            "rules": console("rules", "list", "--json").stdout,
        }

    def test_backup_under_load_restore_delivers(self):
        d = self.d
        self.populate()
        before = self.snapshot(d.console)
        d.start()

        acked = {}  # subject -> monotonic time of its 250
        acked_lock = threading.Lock()
        failures = []

        def send(tag, rcpt, s):
            s.sendmail("load@sender.example", [rcpt], message(tag, rcpt))
            with acked_lock:
                acked[tag] = time.monotonic()

        # Queued for the down backend before the load starts.
        with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
            for i in range(QUEUED_FIRST):
                send("queued-%d" % i, "user%d@%s" % (i, DOMAINS[i % 2]), s)

        stop = threading.Event()

        def sender(n):
            rcpts = ["x%d@a.example" % n, "y%d@b.example" % n, "alice@c.example", "bob@c.example"]
            end = time.monotonic() + LOAD_SECONDS
            try:
                s = smtplib.SMTP("127.0.0.1", d.port, timeout=30)
                for i in range(PER_SENDER):
                    if stop.is_set() or time.monotonic() > end:
                        break
                    send("load-%d-%d" % (n, i), rcpts[i % len(rcpts)], s)
                    if i % 10 == 9:  # a new session now and then
                        s.quit()
                        s = smtplib.SMTP("127.0.0.1", d.port, timeout=30)
                s.quit()
            except Exception as e:  # noqa: BLE001 -- reported by the main thread
                failures.append("sender %d: %r" % (n, e))

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(SENDERS)]
        for t in threads:
            t.start()
        # The backup starts once the load is under way.
        deadline = time.time() + 20
        while len(acked) < QUEUED_FIRST + 2 * SENDERS and time.time() < deadline:
            time.sleep(0.05)
        archive = os.path.join(self.tmp, "state.tar")
        backup_started = time.monotonic()
        p = d.console("backup", archive, "--with-spools")
        backup_done = time.monotonic()
        with acked_lock:
            during = sum(1 for t in acked.values() if backup_started <= t <= backup_done)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(failures, [])
        with acked_lock:
            must = {tag for tag, t in acked.items() if t < backup_started}
        self.assertIn("backup written", p.stdout)
        self.assertGreaterEqual(len(must), QUEUED_FIRST + 2 * SENDERS)
        self.assertGreater(during, 0, "no message was accepted while the backup ran: not a backup under load")
        print("acked %d, before the backup %d, during it %d (%.2f s)"
              % (len(acked), len(must), during, backup_done - backup_started))
        d.stop()

        # Restore into a new state dir of a second configuration.
        r = Daemon(domains=(), shards=2, top_extra='\n[delivery]\nretry_interval = "2s"\n')
        self.restored = r
        shutil.rmtree(r.state, ignore_errors=True)
        out = json.loads(r.console("restore", archive, "--json").stdout)
        self.assertEqual(out["state_dir"], r.state.rstrip("/"))
        names = {m["name"] for m in out["members"]}
        self.assertIn("config/data.mdb", names)
        self.assertTrue(any(n.startswith("spool") for n in names), names)
        self.assertTrue(all(re.fullmatch(r"[0-9a-f]{64}", m["sha256"]) for m in out["members"]))
        self.assertEqual(self.snapshot(r.console), before)
        rules = jsonl(r.console("rules", "list", "--json").stdout)
        self.assertTrue(any("backup-pushed" in json.dumps(b) for b in rules), rules)
        queued = {e["subject"] for e in r.queue()}
        missing = must - queued
        self.assertEqual(missing, set(), "acknowledged before the backup, not in the restored queue")

        # The backend comes up; the engine on the restored dir delivers the queue.
        handler = Collect()
        self.sink = Controller(handler, hostname="127.0.0.1", port=self.sink_port)
        self.sink.start()
        r.start()
        deadline = time.time() + 90
        while time.time() < deadline and not must <= handler.got():
            time.sleep(0.2)
        missing = must - handler.got()
        self.assertEqual(missing, set(), "not delivered from the restored state:\n" + r.read_log()[-3000:])
        # The restored engine runs the pushed bundle.
        log = r.read_log()
        self.assertIn("backup-pushed", log)


if __name__ == "__main__":
    unittest.main()
