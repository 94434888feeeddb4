"""Scanning through the real daemon: verdicts at end of DATA (reject,
quarantine, greylist, deliver), the live feed, `mxguard scan` agreeing with
the engine, and rule bundles pushed while a load runs."""
import json
import os
import shutil
import smtplib
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from mxg import ROOT, Daemon  # noqa: E402

# The EICAR test file: 68 bytes that every scanner flags, harmless by design.
EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

HAM = ("From: Alice <alice@sender.test>\r\nTo: bob@example.com\r\nSubject: minutes of the meeting\r\n"
       "Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <ham1@sender.test>\r\n\r\n"
       "Hi Bob,\r\n\r\nattached are the notes from Tuesday. The next meeting is on the 12th.\r\n\r\nAlice\r\n")


def virus_message(n=0):
    return ("From: x@sender.test\r\nTo: bob@example.com\r\nSubject: invoice %d\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            "--b\r\nContent-Type: application/octet-stream\r\n"
            "Content-Disposition: attachment; filename=\"eicar.com\"\r\n\r\n%s\r\n--b--\r\n") % (n, EICAR)


def subject_message(subject, n=0):
    return ("From: Carol <carol@sender.test>\r\nTo: bob@example.com\r\nSubject: %s\r\n"
            "Message-ID: <m%d@sender.test>\r\n\r\nplain words number %d\r\n") % (subject, n, n)


class ScanTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(top_extra='[scan]\ngreylist_min_delay = "2s"\ngreylist_window = "1h"\n', verdicts=True)
        self.d.start()

    def tearDown(self):
        self.d.stop()
        self.d.cleanup()

    def send(self, data, rcpts=("bob@example.com",), sender="carol@sender.test"):
        """(code, text) of the end-of-DATA reply."""
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
            s.ehlo("client.sender.test")
            s.mail(sender)
            for r in rcpts:
                s.rcpt(r)
            code, text = s.data(data.encode())
            return code, text.decode()

    def feed(self):
        out = self.d.console("feed", "--json", "-n", "100000").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def wait_feed(self, n, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            entries = self.feed()
            if len(entries) >= n:
                return entries
            time.sleep(0.1)
        self.fail("the feed has %d entries, expected %d" % (len(self.feed()), n))

    def offline_scan(self, data):
        path = os.path.join(self.d.dir, "msg.eml")
        with open(path, "w") as f:
            f.write(data)
        out = self.d.console("scan", "--json", path).stdout.strip()
        return json.loads(out)

    def test_ham_is_delivered_and_virus_rejected_with_the_same_reasons_as_offline_scan(self):
        code, _ = self.send(HAM)
        self.assertEqual(code, 250)
        code, text = self.send(virus_message())
        self.assertEqual(code, 550, text)
        self.assertIn("5.7.1", text)
        self.assertIn("reference", text)
        entries = self.wait_feed(2)
        ham, virus = entries[-2], entries[-1]
        self.assertEqual(ham["action"], "deliver")
        self.assertEqual(virus["action"], "reject")
        self.assertEqual(virus["recipients"], ["bob@example.com"])
        self.assertEqual(virus["subject"], "invoice 0")
        self.assertIn(virus["id"], text)  # the reference the sender can quote
        # The engine and `mxguard scan` run the same pipeline on the same bundle.
        offline = self.offline_scan(virus_message())
        self.assertEqual(offline["action"], "reject")
        self.assertEqual(sorted(r["rule"] for r in offline["reasons"]),
                         sorted(r["rule"] for r in virus["reasons"]))
        self.assertAlmostEqual(offline["score"], virus["score"], places=3)
        self.assertGreaterEqual(offline["score"], 15)
        # Only the ham was stored; it carries the verdict.
        queue = self.d.queue()
        self.assertEqual(len(queue), 1)
        raw = self.d.console_bytes("queue", "show", queue[0]["id"], "--raw")
        self.assertIn(b"\r\nAuthentication-Results: mx.test.local", raw)
        self.assertIn(b"\r\nX-MxGuard-Score: ", raw)

    def test_quarantine_threshold_stores_without_queueing(self):
        self.d.console("domain", "set", "example.com", "reject_threshold=100", "quarantine_threshold=5",
                       "greylist_threshold=5")
        code, text = self.send(virus_message(1))
        self.assertEqual(code, 250, text)
        entries = self.wait_feed(1)
        self.assertEqual(entries[-1]["action"], "quarantine")
        # Quarantined: not in the delivery queue.
        self.assertEqual(self.d.queue(), [])

    def test_mixed_recipients_one_reply(self):
        # other.example quarantines, example.com rejects: accepted, and the
        # recipient that would reject is quarantined instead.
        self.d.console("domain", "add", "other.example", "--customer", "acme", "--backend", "127.0.0.1:2",
                       "--active")
        self.d.console("domain", "set", "other.example", "reject_threshold=100", "quarantine_threshold=5",
                       "greylist_threshold=5")
        code, text = self.send(virus_message(2), rcpts=("bob@example.com", "ann@other.example"))
        self.assertEqual(code, 250, text)
        self.assertEqual(self.wait_feed(1)[-1]["action"], "quarantine")

    def test_greylisting_until_the_minimum_delay(self):
        self.d.console("domain", "set", "example.com", "reject_threshold=100", "quarantine_threshold=100",
                       "greylist_threshold=5")
        first = self.send(virus_message(3))
        self.assertEqual(first[0], 451, first)
        self.assertIn("4.7.1", first[1])
        again = self.send(virus_message(3))  # too early
        self.assertEqual(again[0], 451, again)
        time.sleep(2.5)
        later = self.send(virus_message(3))
        self.assertEqual(later[0], 250, later)
        # Another sender is a new triplet.
        other = self.send(virus_message(3), sender="dave@sender.test")
        self.assertEqual(other[0], 451, other)
        actions = [e["action"] for e in self.wait_feed(4)]
        self.assertEqual(actions[-4:], ["greylist", "greylist", "deliver", "greylist"])

    def test_allow_list_skips_to_deliver(self):
        self.d.console("list", "allow", "add", "sender", "carol@sender.test", "--domain", "example.com")
        code, text = self.send(virus_message(4))
        self.assertEqual(code, 250, text)
        self.assertEqual(self.wait_feed(1)[-1]["action"], "deliver")

    def test_bundle_push_under_load_and_rollback(self):
        d = self.d
        key = os.path.join(d.dir, "signing.key")
        out = d.console("rules", "keygen", "-o", key).stdout
        pub = out.strip().splitlines()[-1].split()[-1]
        d.console("rules", "trust", "ops", pub)
        rules = os.path.join(d.dir, "rules")
        shutil.copytree(os.path.join(ROOT, "rules"), rules)
        with open(os.path.join(rules, "99-test.rules"), "w") as f:
            f.write("rule TEST_PUSHED\n  description only in the pushed bundle\n  score 0.5\n"
                    "  target subject\n  pattern /pushtest/i\n")
        bundle = os.path.join(d.dir, "new.bundle")
        d.console("rules", "build", rules, "-o", bundle, "--key", key, "--name", "pushed")

        # An unsigned (tampered) bundle is refused and changes nothing.
        with open(bundle, "rb") as f:
            data = bytearray(f.read())
        data[200] ^= 1
        bad = os.path.join(d.dir, "bad.bundle")
        with open(bad, "wb") as f:
            f.write(data)
        p = d.console("rules", "push", bad, check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("bundle refused", p.stderr)
        self.assertEqual(len([x for x in d.console("rules", "list", "--json").stdout.splitlines() if x]), 1)

        failures, sent = [], [0]
        stop = threading.Event()

        def load(n):
            i = 0
            while not stop.is_set() and i < 2000:
                i += 1
                try:
                    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
                        s.sendmail("carol@sender.test", ["bob@example.com"],
                                   subject_message("pushtest %d-%d" % (n, i), i).encode())
                    sent[0] += 1
                except Exception as e:  # any failed session fails the test
                    failures.append(repr(e))
        threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        d.console("rules", "push", bundle)
        # The watcher polls once a second; wait until messages show the new rule.
        deadline = time.time() + 15
        swapped = False
        while time.time() < deadline and not swapped:
            time.sleep(0.5)
            swapped = any("TEST_PUSHED" in [r["rule"] for r in e["reasons"]] for e in self.feed())
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(60)
        self.assertTrue(swapped, "no verdict used the pushed bundle")
        self.assertEqual(failures, [])
        self.assertGreater(sent[0], 20)
        listed = [json.loads(x) for x in d.console("rules", "list", "--json").stdout.splitlines() if x]
        self.assertEqual([b["active"] for b in listed], [False, True])
        self.assertEqual(listed[1]["name"], "pushed")

        # Rollback: the factory bundle is active again and the rule is gone.
        d.console("rules", "rollback")
        time.sleep(2.5)
        self.send(subject_message("pushtest after rollback", 99))
        last = self.wait_feed(sent[0] + 1)[-1]
        self.assertEqual(last["subject"], "pushtest after rollback")
        self.assertNotIn("TEST_PUSHED", [r["rule"] for r in last["reasons"]])
        self.assertIn("bundle=1", d.read_log().split("rules.active")[-1])


if __name__ == "__main__":
    unittest.main(verbosity=2)
