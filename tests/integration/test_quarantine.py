"""The quarantine through the real daemon and console: messages held by the
scan verdict, listed and filtered, previewed safely, released to the queue
(learning ham), deleted (learning spam), purged after quarantine_days, and
every command within the --as principal's tenant scope."""
import json
import os
import re
import smtplib
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402
from mxg import Daemon  # noqa: E402

# The EICAR test file: harmless by design, scored far above the quarantine threshold.
EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def spam(subject, rcpts, n):
    """A message with an HTML-only body (script, remote image) and an EICAR attachment."""
    return ("From: Mallory <mallory@sender.test>\r\nTo: %s\r\nSubject: %s\r\n"
            "Message-ID: <q%d@sender.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
            "--outer\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            "<html><head><style>p{color:red}</style><script>alert('x')</script></head>"
            "<body><p>Dear <b>customer</b>, your parcel %d is waiting.</p>"
            "<img src=\"http://tracker.remote.test/pixel.gif\"></body></html>\r\n"
            "--outer\r\nContent-Type: application/octet-stream\r\n"
            "Content-Disposition: attachment; filename=\"invoice%d.com\"\r\n\r\n%s\r\n"
            "--outer--\r\n") % (", ".join(rcpts), subject, n, n, n, EICAR)


class QuarantineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = Daemon(domains=("example.com", "sub.example"), verdicts=True)
        c = d.console
        c("customer", "add", "globex")
        c("domain", "add", "globex.example", "--customer", "globex", "--backend", "127.0.0.1:2", "--active")
        for dom in ("example.com", "sub.example", "globex.example"):
            c("domain", "set", dom, "reject_threshold=100", "quarantine_threshold=5", "greylist_threshold=5")
        c("user", "add", "acme-admin", "--role", "customer-admin", "--customer", "acme")
        c("user", "add", "globex-admin", "--role", "customer-admin", "--customer", "globex")
        c("user", "add", "acme-pm", "--role", "postmaster", "--domain", "example.com")
        c("user", "add", "anna", "--role", "user", "--address", "anna@example.com",
          "--shadow", "anna.alias@example.com", "--shadow", "gary@globex.example")
        d.start()
        for n, (subject, rcpts) in enumerate((("parcel for two", ["bob@example.com", "anna@example.com"]),
                                              ("shadow mail", ["anna.alias@example.com"]),
                                              ("sub domain", ["carl@sub.example"]),
                                              ("two customers", ["carl@sub.example", "gary@globex.example"]))):
            code, text = cls.send(spam(subject, rcpts, n), rcpts)
            assert code == 250, (code, text)
        deadline = time.time() + 15
        while time.time() < deadline and len(cls.list_()) < 4:
            time.sleep(0.1)
        by_subject = {m["subject"]: m["id"] for m in cls.list_()}
        cls.ids = {"m1": by_subject["parcel for two"], "m2": by_subject["shadow mail"],
                   "m3": by_subject["sub domain"], "m4": by_subject["two customers"]}

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.cleanup()

    @classmethod
    def send(cls, data, rcpts):
        with smtplib.SMTP("127.0.0.1", cls.d.port, timeout=30) as s:
            s.ehlo("client.sender.test")
            s.mail("mallory@sender.test")
            for r in rcpts:
                s.rcpt(r)
            code, text = s.data(data.encode())
            return code, text.decode()

    @classmethod
    def list_(cls, *args, as_=None):
        pre = ("--as", as_) if as_ else ()
        out = cls.d.console(*pre, "quarantine", "list", "--json", *args).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def as_(self, user, *args):
        return self.d.console("--as", user, *args, check=False)

    def refused(self, p, code=5):
        self.assertEqual(p.returncode, code, (p.stdout, p.stderr))
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def bayes_counts(self):
        return mxg.bayes_counts(self.d)

    def test_1_listing_has_the_verdict(self):
        items = {m["id"]: m for m in self.list_()}
        self.assertEqual(set(items), set(self.ids.values()))
        m1 = items[self.ids["m1"]]
        for key in ("id", "sender", "recipients", "size", "subject", "message_id", "received", "score", "action",
                    "reasons"):
            self.assertIn(key, m1)
        self.assertEqual(m1["action"], "quarantine")
        self.assertEqual(sorted(m1["recipients"]), ["anna@example.com", "bob@example.com"])
        self.assertEqual(m1["sender"], "mallory@sender.test")
        self.assertEqual(m1["message_id"], "<q0@sender.test>")
        self.assertGreaterEqual(m1["score"], 5)
        self.assertTrue(m1["reasons"] and all("rule" in r and "score" in r for r in m1["reasons"]), m1)
        self.assertGreater(m1["size"], 400)
        # Held, not queued.
        self.assertEqual([q for q in self.d.queue() if q["id"] in self.ids.values()], [])
        human = self.d.console("quarantine", "list").stdout
        self.assertIn("4 messages held", human)

    def test_2_filters(self):
        ids = lambda ms: sorted(m["id"] for m in ms)  # noqa: E731
        self.assertEqual(ids(self.list_("--search", "PARCEL FOR")), [self.ids["m1"]])
        self.assertEqual(ids(self.list_("--search", "mallory@")), sorted(self.ids.values()))
        self.assertEqual(ids(self.list_("--domain", "sub.example")), sorted([self.ids["m3"], self.ids["m4"]]))
        m4 = [m for m in self.list_("--domain", "sub.example") if m["id"] == self.ids["m4"]][0]
        self.assertEqual(m4["recipients"], ["carl@sub.example"])
        self.assertEqual(ids(self.list_("--recipient", "Anna@Example.com")), [self.ids["m1"]])
        self.assertEqual(len(self.list_("--since", "1h")), 4)
        self.assertEqual(self.list_("--since", "+1h"), [])
        self.assertEqual(self.list_("--until", "2000-01-01"), [])
        self.assertEqual(len(self.list_("--since", "2000-01-01T00:00:00Z")), 4)
        for bad in (("--since", "yesterday"), ("--domain", "bad domain"), ("--recipient", "nobody")):
            p = self.d.console("quarantine", "list", *bad, check=False)
            self.refused(p, 2)

    def test_3_roles(self):
        ids = lambda ms: sorted(m["id"] for m in ms)  # noqa: E731
        m = self.ids
        self.assertEqual(ids(self.list_(as_="acme-admin")), sorted(m.values()))
        m4 = [x for x in self.list_(as_="acme-admin") if x["id"] == m["m4"]][0]
        self.assertEqual(m4["recipients"], ["carl@sub.example"])  # never globex's recipient
        self.assertEqual(ids(self.list_(as_="acme-pm")), sorted([m["m1"], m["m2"]]))
        self.assertEqual(ids(self.list_(as_="globex-admin")), [m["m4"]])
        self.assertEqual(self.list_(as_="globex-admin")[0]["recipients"], ["gary@globex.example"])
        # A user: own address and shadows; the shadow in another customer's domain is ignored.
        anna = {x["id"]: x for x in self.list_(as_="anna")}
        self.assertEqual(sorted(anna), sorted([m["m1"], m["m2"]]))
        self.assertEqual(anna[m["m1"]]["recipients"], ["anna@example.com"])
        # Out of scope: refused, nothing changes.
        before = self.list_()
        for user, args in (("globex-admin", ("quarantine", "show", m["m1"])),
                           ("globex-admin", ("quarantine", "release", m["m1"])),
                           ("globex-admin", ("quarantine", "delete", m["m1"])),
                           ("globex-admin", ("quarantine", "list", "--domain", "example.com")),
                           ("acme-pm", ("quarantine", "show", m["m3"])),
                           ("acme-pm", ("quarantine", "release", m["m4"], "--recipient", "carl@sub.example")),
                           ("anna", ("quarantine", "release", m["m1"], "--recipient", "bob@example.com")),
                           ("anna", ("quarantine", "delete", m["m3"])),
                           ("anna", ("quarantine", "purge",)),
                           ("acme-admin", ("quarantine", "purge",))):
            self.refused(self.as_(user, *args))
        self.assertEqual(self.list_(), before)
        # A missing id is refused like another tenant's: nothing leaks.
        a = self.as_("globex-admin", "quarantine", "show", m["m1"]).stderr.replace(m["m1"], "X")
        b = self.as_("globex-admin", "quarantine", "show", "0000000000000.s0").stderr.replace("0000000000000.s0", "X")
        self.assertEqual(a, b)

    def test_4_safe_preview(self):
        out = json.loads(self.d.console("quarantine", "show", self.ids["m2"], "--json").stdout)
        headers = {h["name"].lower(): h["value"] for h in out["headers"]}
        self.assertEqual(headers["subject"], "shadow mail")
        self.assertIn("Dear customer, your parcel 1 is waiting.", out["text"])
        self.assertTrue(out["text_from_html"])
        for leaked in ("<", "alert(", "color:red", "tracker.remote.test"):
            self.assertNotIn(leaked, out["text"])
        self.assertEqual([(a["filename"], a["size"]) for a in out["attachments"]], [("invoice1.com", len(EICAR))])
        self.assertEqual(out["score"], self.list_("--search", "shadow mail")[0]["score"])
        human = self.d.console("quarantine", "show", self.ids["m2"]).stdout
        self.assertIn("Subject: shadow mail", human)
        self.assertIn("invoice1.com", human)
        self.assertNotIn("<b>", human)
        # The user sees it through their shadow address.
        self.assertEqual(self.as_("anna", "quarantine", "show", self.ids["m2"]).returncode, 0)
        for bad in ("not-an-id", "ffffffffffff.s7"):
            self.refused(self.d.console("quarantine", "show", bad, check=False), 2)

    def test_5_release_queues_and_learns_ham(self):
        m1 = self.ids["m1"]
        spam_before, ham_before = self.bayes_counts()
        p = self.as_("acme-pm", "quarantine", "release", m1, "--recipient", "bob@example.com", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        released = json.loads(p.stdout)
        self.assertEqual(released["recipients"], ["bob@example.com"])
        queued = {q["id"]: q for q in self.d.queue()}
        self.assertIn(released["queued_id"], queued)
        self.assertEqual(queued[released["queued_id"]]["recipients"], ["bob@example.com"])
        self.assertEqual(queued[released["queued_id"]]["subject"], "parcel for two")
        # Still held for anna only.
        still = [x for x in self.list_() if x["id"] == m1][0]
        self.assertEqual(still["recipients"], ["anna@example.com"])
        self.assertEqual(self.bayes_counts(), (spam_before, ham_before + 2))  # the release and the probe
        # Releasing bob again is wrong input, and changes nothing.
        p = self.d.console("quarantine", "release", m1, "--recipient", "bob@example.com", check=False)
        self.refused(p, 2)

    def test_6_delete_learns_spam(self):
        m2 = self.ids["m2"]
        spam_before, ham_before = self.bayes_counts()
        p = self.as_("anna", "quarantine", "delete", m2, "--learn-spam")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn(m2, [x["id"] for x in self.list_()])
        self.assertEqual(self.bayes_counts(), (spam_before + 1, ham_before + 1))  # the delete; the probe
        self.refused(self.d.console("quarantine", "delete", m2, check=False), 2)

    def test_7_purge_after_quarantine_days(self):
        d = self.d
        d.console("domain", "set", "example.com", "quarantine_days=1")
        d.console("domain", "set", "sub.example", "quarantine_days=3")
        out = json.loads(d.console("quarantine", "purge", "--now", "+12h", "--json").stdout)
        self.assertEqual(out["purged"], 0)
        remaining = {x["id"] for x in self.list_()}
        # After two days example.com's mail is gone; sub.example and globex keep theirs.
        out = json.loads(d.console("quarantine", "purge", "--now", "+2d", "--json").stdout)
        after = {x["id"]: x for x in self.list_()}
        self.assertNotIn(self.ids["m1"], after)
        self.assertIn(self.ids["m3"], after)
        self.assertEqual(after[self.ids["m4"]]["recipients"], ["carl@sub.example", "gary@globex.example"])
        self.assertEqual(out["purged"], len(remaining) - len(after))
        # After four days sub.example's copy goes; globex's (30 days) stays.
        d.console("quarantine", "purge", "--now", "+4d")
        after = {x["id"]: x for x in self.list_()}
        self.assertEqual(list(after), [self.ids["m4"]])
        self.assertEqual(after[self.ids["m4"]]["recipients"], ["gary@globex.example"])
        d.console("quarantine", "purge", "--now", "+31d")
        self.assertEqual(self.list_(), [])
        self.refused(d.console("quarantine", "purge", "--now", "soon", check=False), 2)


FAKETIME_LIB = mxg.FAKETIME_LIB


@unittest.skipUnless(os.path.exists(FAKETIME_LIB), "libfaketime (package faketime) is not installed")
class EnginePurgeTest(unittest.TestCase):
    """The engine's own retention purge: the daemon is restarted with its
    clock moved forward (libfaketime), and its storage writers drop what is
    past each domain's quarantine_days without any console command."""

    def test_engine_purges_past_retention(self):
        d = Daemon(domains=("example.com", "keep.example"), verdicts=True,
                   smtp_extra='\n[quarantine]\npurge_interval = "1s"\n')
        try:
            for dom, days in (("example.com", 3), ("keep.example", 30)):
                d.console("domain", "set", dom, "reject_threshold=100", "quarantine_threshold=5",
                          "greylist_threshold=5", "quarantine_days=%d" % days)
            d.start()
            with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
                s.sendmail("mallory@sender.test", ["bob@example.com"], spam("short", ["bob@example.com"], 1))
                s.sendmail("mallory@sender.test", ["kim@keep.example"], spam("long", ["kim@keep.example"], 2))
            def listed():
                out = d.console("quarantine", "list", "--json").stdout
                return sorted(json.loads(l)["recipients"][0] for l in out.splitlines() if l.strip())
            deadline = time.time() + 30
            while time.time() < deadline and len(listed()) < 2:
                time.sleep(0.2)
            self.assertEqual(listed(), ["bob@example.com", "kim@keep.example"])
            d.stop()
            # Five days later: past example.com's 3 days, within keep.example's 30.
            d.start(env={"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "+5d", "DONT_FAKE_MONOTONIC": "1"})
            deadline = time.time() + 60
            while time.time() < deadline and listed() != ["kim@keep.example"]:
                time.sleep(0.5)
            self.assertEqual(listed(), ["kim@keep.example"], d.read_log()[-3000:])
            # The engine writes its log in batches: the line may trail the purge.
            self.assertIn("event=quarantine.purged", d.wait_log("event=quarantine.purged"))
        finally:
            d.stop()
            d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
