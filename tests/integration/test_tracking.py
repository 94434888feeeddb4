"""Message tracking (issue 16): every decision a real mxguardd takes for
real SMTP clients (smtplib) becomes an event that `mxguard track` finds —
refusals by client, a reject's reference id leading to its whole session, a
message id leading to its whole path (received, verdict, delivery attempts
to an aiosmtpd backend, release from quarantine and the copy's delivery);
the refusals are logged; the feed shows ids, delivery status, every reason
and takes --domain/--action/--since; tenants see only their recipients."""
import json
import os
import re
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402
from test_delivery import Backend  # noqa: E402

EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
VIRUS = ("Subject: invoice\r\nMessage-ID: <virus-N@client.test>\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
         "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
         "Content-Type: application/octet-stream\r\n"
         "Content-Disposition: attachment; filename=\"eicar.com\"\r\n\r\n" + EICAR + "\r\n--b--\r\n")


def queued_id(reply):
    m = re.search(rb"queued as (\S+)", reply)
    assert m, reply
    return m.group(1).decode()


class TrackingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.backend = Backend()
        # One message a minute per client address beyond the first two is
        # refused; each part of the test uses its own loopback address.
        cls.d = mxg.Daemon(smtp_extra="max_message_rate = 2\n", top_extra='[delivery]\nretry_interval = "2s"\n',
                           domains=("example.com", "list.test", "paused.test", "strict.test", "quar.test",
                                    "down.test"), verdicts=True)
        c = cls.d.console
        for dom in ("example.com", "list.test", "paused.test", "quar.test"):
            c("domain", "set", dom, "reject_threshold=100", "quarantine_threshold=5", "greylist_threshold=100")
        for dom in ("example.com", "quar.test"):
            c("domain", "set", dom, "backend=127.0.0.1:%d" % cls.backend.port)
        c("domain", "set", "strict.test", "reject_threshold=5", "quarantine_threshold=5", "greylist_threshold=5")
        c("domain", "set", "down.test", "reject_threshold=100", "quarantine_threshold=100",
          "greylist_threshold=100", "backend=127.0.0.1:1")
        c("domain", "suspend", "paused.test")
        if c("domain", "set", "list.test", "recipients=list", check=False).returncode != 0:
            c("domain", "set", "list.test", "recipients=list", "--force")
        c("list", "block", "add", "sender-domain", "evil.test")
        c("customer", "add", "globex")
        c("domain", "add", "globex.test", "--customer", "globex", "--backend", "127.0.0.1:2", "--active")
        c("user", "add", "acme-admin", "--role", "customer-admin", "--customer", "acme")
        c("user", "add", "globex-admin", "--role", "customer-admin", "--customer", "globex")
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.cleanup()
        cls.backend.stop()

    def smtp(self, source):
        s = smtplib.SMTP("127.0.0.1", self.d.port, timeout=30, source_address=(source, 0))
        s.ehlo("client.test")
        return s

    def track(self, *args, who=None):
        extra = ["--as", who] if who else []
        p = self.d.console(*extra, "track", "--json", *args)
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def wait_track(self, predicate, *args, timeout=20):
        """Events are committed by the storage writer within about a second."""
        deadline = time.time() + timeout
        while True:
            got = self.track(*args)
            if predicate(got) or time.time() > deadline:
                return got
            time.sleep(0.2)

    def test_refusals_are_events_and_log_lines(self):
        s = self.smtp("127.0.2.1")
        replies = []
        s.mail("alice@client.test")
        for rcpt, code in (("x@elsewhere.test", 550), ("nobody@list.test", 550), ("y@paused.test", 450),
                           ("z%elsewhere.test@example.com", 550)):
            replies.append(s.rcpt(rcpt))
            self.assertEqual(replies[-1][0], code, replies[-1])
        s.rset()
        replies.append(s.mail("spammer@evil.test"))
        self.assertEqual(replies[-1][0], 550)
        s.rset()
        # The client's third transaction this minute (the blocked MAIL was
        # the second) is over max_message_rate.
        replies.append(s.mail("alice@client.test"))
        self.assertEqual(replies[-1][0], 451)
        s.quit()
        # Every policy refusal names the session's reference.
        refs = [re.search(rb"; reference (\S+)$", text).group(1).decode() for _, text in replies]
        self.assertEqual(len(set(refs)), 1, replies)
        want = ["relay_denied", "unknown_recipient", "suspended", "relay_denied", "blocked", "rate_limited"]
        ev = self.wait_track(lambda e: len(e) >= len(want), "--ip", "127.0.2.1")
        self.assertEqual([e["decision"] for e in ev], want, ev)
        self.assertEqual([e["code"] for e in ev], [550, 550, 450, 550, 550, 451])
        self.assertEqual(ev[0]["recipients"], ["x@elsewhere.test"])
        self.assertEqual(ev[1]["recipients"], ["nobody@list.test"])
        self.assertEqual(ev[0]["sender"], "alice@client.test")
        self.assertEqual(ev[4]["sender"], "spammer@evil.test")
        self.assertIn("5.1.1", ev[1]["reason"])
        self.assertIn("relay characters", ev[3]["reason"])
        self.assertEqual(len({(e["shard"], e["session"]) for e in ev}), 1, "one session")
        self.assertTrue(all(e["client"] == "127.0.2.1" and e["helo"] == "client.test" for e in ev))
        self.assertTrue(all(e["ref"] == refs[0] for e in ev), ev)
        # Each kind by reference (the whole session), by sender, and (for
        # RCPT refusals) by recipient.
        self.assertEqual([e["decision"] for e in self.track("--ref", refs[0])], want)
        self.assertEqual([e["decision"] for e in self.track("--sender", "ALICE@client.test")],
                         ["relay_denied", "unknown_recipient", "suspended", "relay_denied", "rate_limited"])
        for rcpt, decision in (("x@elsewhere.test", "relay_denied"), ("nobody@list.test", "unknown_recipient"),
                               ("y@paused.test", "suspended")):
            self.assertEqual([e["decision"] for e in self.track("--recipient", rcpt, "--ip", "127.0.2.1")], [decision])
        # The same by sender and by recipient, and the text form.
        self.assertEqual([e["decision"] for e in self.track("--sender", "spammer@evil.test")], ["blocked"])
        self.assertEqual([e["decision"] for e in self.track("--recipient", "NOBODY@list.test")],
                         ["unknown_recipient"])
        text = self.d.console("track", "--ip", "127.0.2.1").stdout.splitlines()
        self.assertEqual(len(text), len(want))
        self.assertRegex(text[0], r"^\d{4}-\d\d-\d\dT\S+ shard=\d 127\.0\.2\.1 +<alice@client\.test> -> "
                                  r"x@elsewhere\.test relay_denied 550 ref=%s \"550 5\.7\.1 <x@elsewhere\.test>: "
                                  r"Relay access denied; reference %s\"$" % (re.escape(refs[0]), re.escape(refs[0])))
        # Each refusal is a log line too.
        log = self.d.wait_log("decision=rate_limited")
        for decision, rcpt in (("relay_denied", "x@elsewhere.test"), ("unknown_recipient", "nobody@list.test"),
                               ("suspended", "y@paused.test")):
            self.assertRegex(log, r"smtp\.refused shard=\d session=\d+ client=127\.0\.2\.1 decision=%s "
                                  r"sender=\"?alice@client\.test\"? rcpt=\"?%s\"?" % (decision, re.escape(rcpt)))
        self.assertIn("decision=blocked sender=", log)
        # Tenants: acme sees its recipients' refusals only; globex none of them.
        acme = self.track("--ip", "127.0.2.1", who="acme-admin")
        self.assertEqual([e["decision"] for e in acme], ["unknown_recipient", "suspended"])
        self.assertEqual(self.track("--ip", "127.0.2.1", who="globex-admin"), [])

    def test_reference_id_finds_the_whole_session(self):
        s = self.smtp("127.0.2.3")
        s.mail("mallory@client.test")
        self.assertEqual(s.rcpt("x@elsewhere.test")[0], 550)
        self.assertEqual(s.rcpt("ceo@strict.test")[0], 250)
        code, reply = s.data(VIRUS.replace("-N@", "-1@").encode())
        s.quit()
        self.assertEqual(code, 550, reply)
        ref = re.search(rb"reference (\S+)", reply).group(1).decode()
        ev = self.wait_track(lambda e: len(e) >= 2, "--ref", ref)
        self.assertEqual([e["decision"] for e in ev], ["relay_denied", "rejected"], ev)
        self.assertEqual(ev[1]["ref"], ref)
        self.assertEqual(ev[1]["code"], 550)
        self.assertEqual(ev[1]["recipients"], ["ceo@strict.test"])
        self.assertRegex(ev[1]["reason"], r"^score=\d+\.\d\d action=reject rules=\S+=")
        self.assertTrue(all(e["client"] == "127.0.2.3" for e in ev))
        # Another client's events are not part of that session.
        self.assertEqual(len({e["session"] for e in ev}), 1)

    def test_message_id_gives_the_whole_path(self):
        s = self.smtp("127.0.2.4")
        s.mail("carol@client.test")
        s.rcpt("bob@example.com")
        code, reply = s.data(b"Subject: hello\r\nMessage-ID: <path-1@client.test>\r\n\r\nhello\r\n")
        s.quit()
        self.assertEqual(code, 250)
        mid = queued_id(reply)
        ev = self.wait_track(lambda e: any(x["decision"] == "delivered" for x in e), "--id", mid)
        self.assertEqual([e["decision"] for e in ev], ["accepted", "delivered"], ev)
        self.assertEqual(ev[0]["code"], 250)
        self.assertRegex(ev[0]["reason"], r"^score=-?\d+\.\d\d action=deliver")
        self.assertEqual(ev[1]["recipients"], ["bob@example.com"])
        self.assertEqual(ev[1]["code"], 250)
        self.assertIn("127.0.0.1", ev[1]["reason"])
        self.assertTrue(all(e["id"] == mid for e in ev))
        # The feed names the id and that it was delivered.
        feed = [json.loads(x) for x in self.d.console("feed", "--json", "--domain", "example.com").stdout.splitlines()]
        mine = [f for f in feed if f["id"] == mid]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["delivery"], "delivered")
        line = [x for x in self.d.console("feed", "--domain", "example.com").stdout.splitlines() if mid in x]
        self.assertEqual(len(line), 1)
        self.assertIn("deliver/delivered", line[0])

    def test_delivery_attempts_carry_the_id(self):
        with self.smtp("127.0.2.5") as s:
            s.mail("dave@client.test")
            s.rcpt("eve@down.test")
            code, reply = s.data(b"Subject: to a backend that is down\r\n\r\nx\r\n")
        self.assertEqual(code, 250)
        mid = queued_id(reply)
        ev = self.wait_track(lambda e: any(x["decision"] == "deferred" for x in e), "--id", mid)
        deferred = [e for e in ev if e["decision"] == "deferred"]
        self.assertTrue(deferred, ev)
        self.assertIn("127.0.0.1", deferred[0]["reason"])
        log = self.d.wait_log("delivery.connect_failed id=%s " % mid)
        self.assertIn("delivery.connect_failed id=%s " % mid, log)
        feed = [json.loads(x) for x in self.d.console("feed", "--json", "--domain", "down.test").stdout.splitlines()]
        self.assertEqual([f["delivery"] for f in feed if f["id"] == mid], ["deferred"])

    def test_quarantine_release_is_on_the_path(self):
        with self.smtp("127.0.2.6") as s:
            s.mail("mallory@client.test")
            s.rcpt("ceo@quar.test")
            code, reply = s.data(VIRUS.replace("-N@", "-2@").encode())
        self.assertEqual(code, 250)
        mid = queued_id(reply)
        ev = self.wait_track(lambda e: len(e) >= 1, "--id", mid)
        self.assertEqual([e["decision"] for e in ev], ["quarantined"])
        feed = [json.loads(x) for x in self.d.console("feed", "--json", "--action", "quarantine").stdout.splitlines()]
        self.assertEqual([f["delivery"] for f in feed if f["id"] == mid], ["held"])
        # Every reason is printed, none cut.
        entry = next(f for f in feed if f["id"] == mid)
        line = next(x for x in self.d.console("feed", "--action", "quarantine").stdout.splitlines() if mid in x)
        for r in entry["reasons"]:
            self.assertIn(r["rule"], line)
        out = self.d.console("quarantine", "release", mid, "--json").stdout
        copy = json.loads(out)["queued_id"]
        ev = self.wait_track(lambda e: any(x["decision"] == "delivered" for x in e), "--id", mid)
        self.assertEqual([e["decision"] for e in ev], ["quarantined", "released", "delivered"], ev)
        self.assertEqual(ev[1]["ref"], copy)
        self.assertIn("released by console:", ev[1]["reason"])
        self.assertEqual(ev[2]["id"], copy)
        # Filters of the feed.
        rejects = [json.loads(x) for x in self.d.console("feed", "--json", "--action", "reject").stdout.splitlines()]
        self.assertTrue(all(f["action"] == "reject" for f in rejects))
        later = self.d.console("feed", "--json", "--since", "+1d").stdout
        self.assertEqual(later.strip(), "")
        p = self.d.console("--as", "acme-admin", "feed", "--domain", "globex.test", check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("no such domain: globex.test", p.stderr)

    def test_bad_arguments(self):
        for args, msg in ((["--ip", "300.1.1.1"], "--ip: not an IP address"),
                          (["--since", "yesterday-ish"], "--since:"),
                          (["--since", "1d", "--until", "2d"], "--since is after --until")):
            p = self.d.console("track", *args, check=False)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(msg, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
