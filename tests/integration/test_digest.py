#!/usr/bin/env python3
"""The daily quarantine digest end to end: a real mxguardd quarantines spam
(an EICAR attachment) for a user, their shadow address, a recipient without
an account and a user who turned the digest off; `mxguard digest send`
queues the digests, the engine delivers them to an aiosmtpd backend, and the
test reads them as a mail reader would (both parts, subjects, links), checks a
link's token with `mxguard digest verify`, and that a second run, a digest
that is off and a dry run send nothing.

Run: MXGUARDD_BIN=... MXGUARD_BIN=... /usr/bin/python3 tests/integration/test_digest.py
"""
import email
import email.policy
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
from test_tracking import VIRUS  # noqa: E402

PUBLIC_URL = "https://mx.test.local:8443"
LINK = re.compile(re.escape(PUBLIC_URL) + r"/digest/(release|release_allow|delete)/([A-Za-z0-9_.-]+)")
SUBJECTS = {
    "bob@example.com": "Invoice <b>for bob</b> & co",
    "bob@example.org": "Shadow copy for bob's alias",
    "carol@example.org": "Carol's overdue parcel",
    "dave@example.com": "Dave's prize",
}


def json_lines(text):
    return [json.loads(l) for l in text.splitlines() if l.strip()]


class DigestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.backend = Backend()
        cls.d = mxg.Daemon(domains=("example.com", "example.org"), verdicts=True,
                           top_extra='[web]\npublic_url = "%s"\n' % PUBLIC_URL)
        c = cls.d.console
        for dom in ("example.com", "example.org"):
            c("domain", "set", dom, "reject_threshold=100", "quarantine_threshold=5", "greylist_threshold=100",
              "backend=127.0.0.1:%d" % cls.backend.port)
        c("domain", "set", "example.com", "digest_from=quarantine@example.com")
        c("user", "add", "bob", "--role", "user", "--customer", "acme", "--address", "bob@example.com",
          "--shadow", "bob@example.org")
        c("user", "add", "dave", "--role", "user", "--customer", "acme", "--address", "dave@example.com")
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.backend.stop()
        cls.d.cleanup()

    def quarantined(self):
        return json_lines(self.d.console("quarantine", "list", "--json").stdout)

    def send_virus(self, rcpt):
        body = VIRUS.replace("Subject: invoice", "Subject: " + SUBJECTS[rcpt]).replace(
            "-N@", "-%s@" % rcpt.replace("@", "."))
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
            s.ehlo("client.test")
            s.sendmail("spammer@bad.test", [rcpt], ("From: <spammer@bad.test>\r\nTo: <%s>\r\n" % rcpt + body).encode())

    def digest(self, *args, check=True):
        return self.d.console("digest", "send", "--settle", "0", *args, check=check)

    def test_digest_flow(self):
        c = self.d.console
        # A user's digest setting: bad input is refused before anything is written.
        bad = c("user", "set", "dave", "digest=maybe", check=False)
        self.assertEqual(bad.returncode, 2)
        self.assertEqual(len(bad.stderr.strip().splitlines()), 1, bad.stderr)
        self.assertEqual(c("user", "set", "nobody", "digest=off", check=False).returncode, 2)
        off = json_lines(c("user", "set", "dave", "digest=off", "--json").stdout)
        self.assertEqual(off[0]["digest"], "off")
        # Only the operator sends digests.
        self.assertEqual(c("--as", "bob", "digest", "send", check=False).returncode, 5)

        for rcpt in SUBJECTS:
            self.send_virus(rcpt)
        deadline = time.time() + 30
        while len(self.quarantined()) < 4 and time.time() < deadline:
            time.sleep(0.1)
        held = {r["recipients"][0]: r["id"] for r in self.quarantined()}
        self.assertEqual(set(held), set(SUBJECTS))

        # A dry run says what would go and writes nothing: no queue entry, no
        # key, and the real run afterwards still finds everything new.
        queue_before = self.d.queue()
        dry = json_lines(self.digest("--dry-run", "--json").stdout)
        self.assertEqual({d["recipient"] for d in dry}, {"bob@example.com", "carol@example.org"})
        self.assertTrue(all(d["queued_id"] is None for d in dry))
        self.assertEqual(self.d.queue(), queue_before)
        self.assertEqual(c("digest", "keys", "--json").stdout.strip(), "")
        self.assertIn("Would send Quarantine digest for bob@example.com: 2 new messages",
                      self.digest("--dry-run").stdout)

        sent = {d["recipient"]: d for d in json_lines(self.digest("--json").stdout)}
        self.assertEqual(set(sent), {"bob@example.com", "carol@example.org"})
        self.assertEqual(set(sent["bob@example.com"]["messages"]), {held["bob@example.com"], held["bob@example.org"]})
        self.assertEqual(sent["carol@example.org"]["messages"], [held["carol@example.org"]])
        self.assertTrue(re.fullmatch(r"[0-9a-f]{13}-d\d+\.s\d+", sent["bob@example.com"]["queued_id"]))

        delivered = self.backend.rec.wait(2)
        by_rcpt = {m["rcpts"][0]: m for m in delivered}
        self.assertEqual(set(by_rcpt), {"bob@example.com", "carol@example.org"})
        self.assertEqual(by_rcpt["bob@example.com"]["from"], "quarantine@example.com")
        self.assertEqual(by_rcpt["carol@example.org"]["from"], "postmaster@example.org")

        # Read bob's digest as a mail reader does.
        msg = email.message_from_bytes(by_rcpt["bob@example.com"]["data"], policy=email.policy.default)
        self.assertEqual(msg["Subject"], "Quarantine digest for bob@example.com: 2 new messages")
        self.assertEqual(msg["Auto-Submitted"], "auto-generated")
        self.assertEqual(msg["MIME-Version"], "1.0")
        self.assertIn("quarantine@example.com", msg["From"])
        self.assertIn("bob@example.com", msg["To"])
        self.assertTrue(msg["Date"] and msg["Message-ID"])
        self.assertEqual(msg.get_content_type(), "multipart/alternative")
        text = msg.get_body(preferencelist=("plain",)).get_content()
        html = msg.get_body(preferencelist=("html",)).get_content()
        print("--- digest text part for bob@example.com ---\n%s--- end ---" % text)
        for part in (text, html):
            self.assertEqual(len(LINK.findall(part)), 6)
        self.assertIn(SUBJECTS["bob@example.com"], text)
        self.assertIn(SUBJECTS["bob@example.org"], text)
        self.assertIn("spammer@bad.test", text)
        self.assertIn("Invoice &lt;b&gt;for bob&lt;/b&gt; &amp; co", html)
        self.assertNotIn("<b>for bob", html)
        self.assertIn("Shadow copy for bob&#39;s alias", html)
        self.assertNotIn(SUBJECTS["carol@example.org"], text)

        # Each link's token verifies for its action and one of the two messages.
        seen = set()
        for action, token in LINK.findall(text):
            v = json.loads(c("digest", "verify", token, "--json").stdout)
            self.assertTrue(v["valid"])
            self.assertEqual(v["action"], action)
            self.assertEqual(v["recipient"], "bob@example.com")
            seen.add((v["message_id"], action))
        self.assertEqual(len(seen), 6)
        self.assertEqual({m for m, _ in seen}, {held["bob@example.com"], held["bob@example.org"]})
        # An altered token is refused, with one line on stderr.
        _, token = LINK.findall(text)[0]
        payload, sig = token.split(".")
        altered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + sig
        r = c("digest", "verify", altered, "--json", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertFalse(json.loads(r.stdout)["valid"])
        self.assertIn(json.loads(r.stdout)["error"], ("bad_signature", "malformed"))
        self.assertIn("digest link refused", r.stderr)

        # The digest only lists: everything is still held.
        self.assertEqual(len(self.quarantined()), 4)
        audit = [e for e in json_lines(c("audit", "--json").stdout) if e["action"] == "digest.send"]
        self.assertEqual({e["object"] for e in audit}, {"bob@example.com", "carol@example.org"})

        # A second run has nothing new; dave (digest off) never gets one.
        again = self.digest("--json")
        self.assertEqual(again.stdout.strip(), "")
        first_ids = {d["queued_id"] for d in sent.values()}
        self.assertLessEqual({q["id"] for q in self.d.queue()}, first_ids)  # at most the first two, still leaving
        self.assertEqual(len(self.backend.rec.messages), 2)
        self.assertNotIn("dave@example.com", [m["rcpts"][0] for m in self.backend.rec.messages])

        # New mail for bob after the digest goes into the next one, alone.
        SUBJECTS["bob@example.com"] = "A later one for bob"
        self.send_virus("bob@example.com")
        deadline = time.time() + 30
        while len(self.quarantined()) < 5 and time.time() < deadline:
            time.sleep(0.1)
        later = json_lines(self.digest("--json").stdout)
        self.assertEqual([(d["recipient"], len(d["messages"])) for d in later], [("bob@example.com", 1)])
        third = self.backend.rec.wait(3)[2]
        msg = email.message_from_bytes(third["data"], policy=email.policy.default)
        self.assertEqual(msg["Subject"], "Quarantine digest for bob@example.com: 1 new message")
        self.assertIn("A later one for bob", msg.get_body(preferencelist=("plain",)).get_content())


if __name__ == "__main__":
    unittest.main(verbosity=2)
