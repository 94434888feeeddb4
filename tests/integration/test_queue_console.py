"""The delivery queue from the console against the real mxguardd: list with
its filters, show, retry, bounce and delete, and what each role may see and do.
Every backend is 127.0.0.1:2 where nothing listens, so mail is deferred with
"Connection refused" after its first attempt; retry_interval is an hour, so
nothing moves unless the console moves it."""
import json
import os
import smtplib
import socket
import sys
import time
import unittest
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mxg import Daemon  # noqa: E402

# top_extra is written at the top level, before [smtp]: a section of its own fits there.
DELIVERY = '[delivery]\nretry_interval = "1h"\n'
MSG = "From: Alice <alice@sender.invalid>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@sender.invalid>\r\n\r\nHi.\r\n"


def epoch(iso):
    return datetime.strptime(iso.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


class QueueConsole(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(domains=(), top_extra=DELIVERY)
        c = self.d.console
        c("customer", "add", "acme")
        c("customer", "add", "globex")
        for name, customer in (("acme.example", "acme"), ("acme2.example", "acme"), ("globex.example", "globex")):
            c("domain", "add", name, "--customer", customer, "--backend", "127.0.0.1:2", "--active")
            c("domain", "set", name, "reject_threshold=100", "quarantine_threshold=100", "greylist_threshold=100")
        c("user", "add", "acme-admin", "--role", "customer-admin", "--customer", "acme")
        c("user", "add", "globex-admin", "--role", "customer-admin", "--customer", "globex")
        c("user", "add", "acme-pm", "--role", "postmaster", "--domain", "acme.example")
        c("user", "add", "anna", "--role", "user", "--address", "anna@acme.example")
        self.d.start()

    def tearDown(self):
        code = self.d.stop()
        log = self.d.read_log()
        self.d.cleanup()
        self.assertIn(code, (0, None), log)

    # -- helpers ---------------------------------------------------------

    def send(self, rcpts, subject="hello", sender="alice@sender.invalid"):
        with smtplib.SMTP("127.0.0.1", self.d.port, local_hostname="client.example", timeout=10) as s:
            s.ehlo()
            s.mail(sender)
            for r in rcpts:
                self.assertEqual(s.rcpt(r)[0], 250, r)
            code, resp = s.data(MSG.format(subject=subject).encode())
            self.assertEqual(code, 250, resp)
            return resp.decode().rsplit(" ", 1)[1]

    def cli(self, *args, as_user=None):
        pre = ("--as", as_user) if as_user else ()
        return self.d.console(*pre, "queue", *args, check=False)

    def entries(self, *args, as_user=None):
        p = self.cli("list", "--json", *args, as_user=as_user)
        self.assertEqual(p.returncode, 0, p.stderr)
        return {e["id"]: e for e in (json.loads(l) for l in p.stdout.splitlines() if l.strip())}

    def wait(self, pred, what, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            q = self.entries()
            if pred(q):
                return q
            time.sleep(0.1)
        self.fail("timed out waiting for %s: %r" % (what, self.entries()))

    def wait_deferred(self, *ids, attempts=1):
        return self.wait(lambda q: all(i in q and q[i]["state"] == "deferred" and q[i]["attempts"] >= attempts
                                       for i in ids), "deferral of %s" % (ids,))

    def refused(self, p, code, contains):
        self.assertEqual(p.returncode, code, (p.stdout, p.stderr))
        self.assertEqual(p.stdout, "")
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertTrue(lines[0].startswith("mxguard: "), lines[0])
        self.assertIn(contains, lines[0])
        return lines[0]

    def audit(self):
        out = self.d.console("audit", "--json").stdout
        return [json.loads(l) for l in out.splitlines() if l.strip()]

    # -- list and show ---------------------------------------------------

    def test_list_shows_deferred_messages_with_last_error(self):
        qid = self.send(["bob@acme.example"], subject="deferred")
        e = self.wait_deferred(qid)[qid]
        for key in ("id", "shard", "state", "attempts", "next_attempt", "sender", "recipients", "size", "subject",
                    "message_id", "received", "client_ip", "helo", "tls", "pending", "domains"):
            self.assertIn(key, e)
        self.assertEqual(e["attempts"], 1)
        self.assertEqual(e["recipients"], ["bob@acme.example"])
        self.assertEqual(e["domains"], ["acme.example"])
        self.assertEqual(len(e["pending"]), 1)
        self.assertEqual(e["pending"][0]["recipient"], "bob@acme.example")
        self.assertEqual(e["pending"][0]["last_code"], 0)
        self.assertIn("Connection refused", e["pending"][0]["last_error"])
        self.assertFalse(e["bounce_requested"])
        # Next attempt one retry interval (plus jitter) later.
        self.assertGreater(epoch(e["next_attempt"]) - time.time(), 3000)

        table = self.cli("list")
        self.assertEqual(table.returncode, 0, table.stderr)
        self.assertIn(qid, table.stdout)
        self.assertIn("deferred(1)", table.stdout)
        self.assertIn("bob@acme.example", table.stdout)
        self.assertIn("Connection refused", table.stdout)
        self.assertIn("LAST ERROR", table.stdout)
        self.assertIn("1 message,", table.stdout)

    def test_domain_and_state_filters(self):
        acme = self.send(["bob@acme.example"])
        globex = self.send(["carol@globex.example"])
        both = self.send(["dave@acme.example", "erin@globex.example"])
        self.wait_deferred(acme, globex, both)
        self.assertEqual(set(self.entries("--domain", "acme.example")), {acme, both})
        self.assertEqual(set(self.entries("--domain", "GLOBEX.example")), {globex, both})
        self.assertEqual(self.entries("--domain", "nosuch.example"), {})
        self.assertEqual(set(self.entries("--state", "deferred")), {acme, globex, both})
        self.assertEqual(self.entries("--state", "queued"), {})
        self.assertEqual(set(self.entries("--state", "deferred", "--domain", "globex.example")), {globex, both})
        table = self.cli("list", "--domain", "globex.example").stdout
        self.assertIn("2 messages,", table)
        self.assertNotIn(acme, table)

        # A backend that accepts the connection but never greets holds the
        # first attempt open: the message stays "queued" meanwhile.
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            self.d.console("domain", "add", "slow.example", "--customer", "acme", "--backend",
                           "127.0.0.1:%d" % silent.getsockname()[1], "--active")
            self.d.console("domain", "set", "slow.example", "reject_threshold=100", "quarantine_threshold=100",
                           "greylist_threshold=100")
            slow = self.send(["frank@slow.example"])
            queued = self.entries("--state", "queued")
            self.assertEqual(set(queued), {slow})
            self.assertEqual(queued[slow]["attempts"], 0)
            self.assertEqual(queued[slow]["pending"], [{"recipient": "frank@slow.example", "last_code": 0,
                                                        "last_error": ""}])
            self.assertNotIn(slow, self.entries("--state", "deferred"))
            self.assertIn("queued", self.cli("list", "--domain", "slow.example").stdout)

    def test_show_gives_each_recipients_last_error(self):
        qid = self.send(["bob@acme.example", "carol@globex.example"], subject="shared")
        self.wait_deferred(qid)
        shown = json.loads(self.cli("show", qid, "--json").stdout)
        self.assertEqual(shown["id"], qid)
        self.assertEqual([p["recipient"] for p in shown["pending"]], ["bob@acme.example", "carol@globex.example"])
        for p in shown["pending"]:
            self.assertIn("Connection refused", p["last_error"])
        self.assertEqual(shown["domains"], ["acme.example", "globex.example"])
        human = self.cli("show", qid)
        self.assertEqual(human.returncode, 0, human.stderr)
        lines = human.stdout.splitlines()
        pending = [l for l in lines if l.startswith("pending:")]
        errors = [l for l in lines if l.strip().startswith("last error:")]
        self.assertEqual(len(pending), 2)
        self.assertEqual(len(errors), 2)
        self.assertIn("bob@acme.example", pending[0])
        self.assertTrue(all("Connection refused" in l for l in errors), errors)
        raw = self.d.console_bytes("queue", "show", qid, "--raw")
        self.assertIn(b"Subject: shared\r\n", raw)

    # -- retry, bounce, delete -------------------------------------------

    def test_retry_moves_the_next_attempt_to_now(self):
        qid = self.send(["bob@acme.example"])
        other = self.send(["carol@globex.example"])
        before = self.wait_deferred(qid, other)
        # Stopped, so the attempt after the retry cannot race the check below.
        self.assertEqual(self.d.stop(), 0)
        p = self.cli("retry", qid)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 1)
        self.assertIn(qid, p.stdout)
        after = self.entries()
        self.assertLess(abs(epoch(after[qid]["next_attempt"]) - time.time()), 30)
        self.assertEqual(after[other]["next_attempt"], before[other]["next_attempt"])
        self.assertIn(("queue.retry", qid), [(e["action"], e["object"]) for e in self.audit()])

        self.d.start()
        q = self.wait_deferred(qid, attempts=2)
        self.assertGreater(epoch(q[qid]["next_attempt"]) - time.time(), 3000)
        self.assertIn("Connection refused", q[qid]["pending"][0]["last_error"])
        self.assertEqual(q[other]["attempts"], 1)

    def test_retry_all_with_filters(self):
        acme = self.send(["bob@acme.example"])
        acme2 = self.send(["dave@acme2.example"])
        globex = self.send(["carol@globex.example"])
        before = self.wait_deferred(acme, acme2, globex)
        self.assertEqual(self.d.stop(), 0)
        p = self.cli("retry", "--all", "--domain", "acme.example", "--state", "deferred")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "1 message will be retried now.")
        after = self.entries()
        self.assertLess(abs(epoch(after[acme]["next_attempt"]) - time.time()), 30)
        for qid in (acme2, globex):
            self.assertEqual(after[qid]["next_attempt"], before[qid]["next_attempt"])
        p = self.cli("retry", "--all")
        self.assertEqual(p.stdout.strip(), "3 messages will be retried now.")
        self.assertTrue(all(abs(epoch(e["next_attempt"]) - time.time()) < 30 for e in self.entries().values()))

    def test_bounce_returns_the_message_to_its_sender(self):
        qid = self.send(["bob@acme.example"], subject="bounce-me")
        self.wait_deferred(qid)
        p = self.cli("bounce", qid)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 1)
        self.assertIn("alice@sender.invalid", p.stdout)
        q = self.wait(lambda q: qid not in q and any(e["sender"] == "" for e in q.values()), "the DSN")
        dsn = [e for e in q.values() if e["sender"] == ""]
        self.assertEqual(len(dsn), 1)
        self.assertEqual(dsn[0]["recipients"], ["alice@sender.invalid"])
        self.assertEqual(dsn[0]["pending"][0]["recipient"], "alice@sender.invalid")
        raw = self.d.console_bytes("queue", "show", dsn[0]["id"], "--raw")
        self.assertIn(b"multipart/report", raw)
        self.assertIn(b"bob@acme.example", raw)
        self.assertIn(("queue.bounce", qid), [(e["action"], e["object"]) for e in self.audit()])

        # The DSN has no sender of its own: bouncing it drops it.
        p = self.cli("bounce", dsn[0]["id"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("dropped", p.stdout)
        self.wait(lambda q: q == {}, "the dropped DSN")

    def test_delete(self):
        qid = self.send(["bob@acme.example"])
        keep = self.send(["carol@acme.example"])
        self.wait_deferred(qid, keep)
        p = self.cli("delete", qid)
        self.assertEqual((p.returncode, p.stdout), (0, "Deleted message %s.\n" % qid), p.stderr)
        self.assertEqual(set(self.entries()), {keep})
        self.refused(self.cli("delete", qid), 2, "no such message")
        self.refused(self.cli("show", qid), 2, "no such message")

    def test_bad_ids_and_arguments(self):
        for verb in ("show", "retry", "bounce", "delete"):
            self.refused(self.cli(verb, "not-an-id"), 2, "")
            self.refused(self.cli(verb, "0190f3c2a1b2c3.s0"), 2, "no such message: 0190f3c2a1b2c3.s0")
            self.refused(self.cli(verb, "0190f3c2a1b2c3.s7"), 2, "no such message")
        self.refused(self.cli("retry"), 2, "message id or --all")
        self.refused(self.cli("retry", "0190f3c2a1b2c3.s0", "--all"), 2, "")
        self.refused(self.cli("retry", "0190f3c2a1b2c3.s0", "--domain", "acme.example"), 2, "")
        self.refused(self.cli("list", "--state", "stuck"), 2, "queued or deferred")
        self.refused(self.cli("list", "--domain", "not a domain"), 2, "")
        self.refused(self.cli("bounce"), 2, "")

    def test_help(self):
        p = self.d.console("queue", "--help")
        for verb in ("list", "show", "retry", "bounce", "delete"):
            self.assertIn(verb, p.stdout)
        self.assertIn("--all", self.d.console("queue", "retry", "--help").stdout)
        self.assertIn("--state", self.d.console("queue", "list", "--help").stdout)

    # -- roles -----------------------------------------------------------

    def populate(self):
        ids = {
            "acme": self.send(["bob@acme.example"]),
            "acme2": self.send(["dave@acme2.example"]),
            "globex": self.send(["carol@globex.example"]),
            "shared": self.send(["erin@acme.example", "frank@globex.example"]),
        }
        self.wait_deferred(*ids.values())
        # Nothing moves from here on but what the console moves.
        self.assertEqual(self.d.stop(), 0)
        return ids

    def test_tenants_see_only_their_recipients(self):
        ids = self.populate()
        acme = self.entries(as_user="acme-admin")
        self.assertEqual(set(acme), {ids["acme"], ids["acme2"], ids["shared"]})
        shared = acme[ids["shared"]]
        self.assertEqual(shared["recipients"], ["erin@acme.example"])
        self.assertEqual([p["recipient"] for p in shared["pending"]], ["erin@acme.example"])
        self.assertEqual(shared["domains"], ["acme.example"])
        self.assertNotIn("globex", self.cli("list", as_user="acme-admin").stdout)
        self.assertNotIn("globex", self.cli("show", ids["shared"], as_user="acme-admin").stdout)

        self.assertEqual(set(self.entries(as_user="acme-pm")), {ids["acme"], ids["shared"]})
        self.assertEqual(set(self.entries(as_user="globex-admin")), {ids["globex"], ids["shared"]})
        self.assertEqual(set(self.entries("--domain", "acme2.example", as_user="acme-admin")), {ids["acme2"]})

        self.refused(self.cli("list", "--domain", "globex.example", as_user="acme-admin"), 5, "not permitted")
        self.refused(self.cli("list", "--domain", "acme2.example", as_user="acme-pm"), 5, "not permitted")
        self.refused(self.cli("list", as_user="anna"), 5, "not permitted")
        self.refused(self.cli("show", ids["acme"], as_user="anna"), 5, "not permitted")

    def test_tenants_cannot_act_on_others_mail(self):
        ids = self.populate()
        before = self.entries()
        audit_before = len(self.audit())
        for verb in ("show", "retry", "bounce", "delete"):
            # Another customer's message and a missing one are refused alike: ids do not leak.
            a = self.refused(self.cli(verb, ids["acme"], as_user="globex-admin"), 5, "not permitted")
            b = self.refused(self.cli(verb, "0190f3c2a1b2c3.s0", as_user="globex-admin"), 5, "not permitted")
            self.assertEqual(a.replace(ids["acme"], "X"), b.replace("0190f3c2a1b2c3.s0", "X"))
            self.refused(self.cli(verb, ids["acme2"], as_user="acme-pm"), 5, "not permitted")
            self.refused(self.cli(verb, ids["acme"], as_user="anna"), 5, "not permitted")
        for verb in ("retry", "bounce", "delete"):
            for user in ("acme-admin", "globex-admin", "acme-pm"):
                self.refused(self.cli(verb, ids["shared"], as_user=user), 5, "outside your domains")
        self.assertEqual(self.entries(), before)
        self.assertEqual(len(self.audit()), audit_before)

        # Their own mail they may act on; --all skips what they share.
        p = self.cli("retry", "--all", as_user="globex-admin")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1 message will be retried now. (1 skipped", p.stdout)
        after = self.entries()
        self.assertLess(abs(epoch(after[ids["globex"]]["next_attempt"]) - time.time()), 30)
        self.assertEqual(after[ids["shared"]]["next_attempt"], before[ids["shared"]]["next_attempt"])
        self.assertEqual(self.cli("bounce", ids["acme2"], as_user="acme-admin").returncode, 0)
        self.assertTrue(self.entries()[ids["acme2"]]["bounce_requested"])
        self.assertEqual(self.cli("delete", ids["acme"], as_user="acme-pm").returncode, 0)
        self.assertNotIn(ids["acme"], self.entries())
        actions = [(e["principal"], e["action"], e["object"]) for e in self.audit()]
        self.assertIn(("globex-admin", "queue.retry", ids["globex"]), actions)
        self.assertIn(("acme-admin", "queue.bounce", ids["acme2"]), actions)
        self.assertIn(("acme-pm", "queue.delete", ids["acme"]), actions)
        # The operator may act on shared mail.
        self.assertEqual(self.cli("delete", ids["shared"]).returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
