"""The rule bundle store and the local layer through the real console and a
running engine (issue 16): a score override in rules/local changes the
verdict of a message sent with smtplib and still applies after a push, a
same-digest push stores nothing, pushes prune to rules.keep, `rules activate
N` goes forward again after a rollback, `rules keys` and `rules list` name
the trusted key, and a bad local layer never takes the engine's rules away."""
import json
import os
import re
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from mxg import MXGUARD, Daemon  # noqa: E402

FACTORY_RULE = "SPAM_WORK_FROM_HOME"  # 1.0 in the factory rules; text "work from home"


def work_from_home(n):
    return ("From: Carol <carol@sender.test>\r\nTo: bob@example.com\r\nSubject: note %d\r\n"
            "Message-ID: <wfh%d@sender.test>\r\n\r\nYou can work from home on Fridays now.\r\n") % (n, n)


def pushtest(n):
    return ("From: Carol <carol@sender.test>\r\nTo: bob@example.com\r\nSubject: pushtest %d\r\n"
            "Message-ID: <pt%d@sender.test>\r\n\r\nplain words\r\n") % (n, n)


def lines(text):
    return [json.loads(x) for x in text.splitlines() if x.strip()]


class RulesStoreTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(top_extra="[rules]\nkeep = 3\n", verdicts=True)
        self.d.console("domain", "set", "example.com", "reject_threshold=10", "quarantine_threshold=10",
                       "greylist_threshold=10")
        self.local = os.path.join(self.d.state, "rules", "local")
        self.sent = 0
        self.d.start()

    def tearDown(self):
        self.d.stop()
        self.d.cleanup()

    # -- helpers -------------------------------------------------------------

    def send(self, data):
        """(code, text) of the end-of-DATA reply."""
        self.sent += 1
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
            s.ehlo("client.sender.test")
            s.mail("carol@sender.test")
            s.rcpt("bob@example.com")
            code, text = s.data(data.encode())
            return code, text.decode()

    def reasons_of(self, subject, timeout=15):
        """The rules (id -> score) of the feed entry with this subject."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for e in lines(self.d.console("feed", "--json", "-n", "100000").stdout):
                if e["subject"] == subject:
                    return {r["rule"]: r["score"] for r in e["reasons"]}
            time.sleep(0.1)
        self.fail("no feed entry with subject %r" % subject)

    def count(self, phrase):
        return self.d.read_log().count(phrase)

    def wait_log_count(self, phrase, count, timeout=20):
        """The log once `phrase` appears `count` times (the watcher polls once a second)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            log = self.d.read_log()
            if log.count(phrase) >= count:
                return log
            time.sleep(0.1)
        self.fail("%r seen %d times, not %d:\n%s" % (phrase, self.d.read_log().count(phrase), count,
                                                      self.d.read_log()[-3000:]))

    def write_local(self, name, text):
        os.makedirs(self.local, exist_ok=True)
        with open(os.path.join(self.local, name), "w") as f:
            f.write(text)

    def build(self, key, n, with_factory_rule=True):
        """A small signed bundle: TEST_PUSHED_<n> on subjects with 'pushtest', and
        (unless told not to) a rule with the factory rule's id."""
        src = os.path.join(self.d.dir, "src%d" % n)
        os.makedirs(src, exist_ok=True)
        text = ("rule TEST_PUSHED_%d\n  description only in pushed bundle %d\n  score 0.5\n"
                "  target subject\n  pattern /pushtest/i\n") % (n, n)
        if with_factory_rule:
            text += ("rule %s\n  description work from home, pushed\n  score 1.5\n  target text\n"
                     "  pattern /work from home/i\n") % FACTORY_RULE
        with open(os.path.join(src, "10-small.rules"), "w") as f:
            f.write(text)
        out = os.path.join(self.d.dir, "b%d.bundle" % n)
        built = json.loads(self.d.console("rules", "build", src, "-o", out, "--key", key, "--name", "small-%d" % n,
                                          "--json").stdout)
        self.assertEqual(built["file"], out)
        self.assertEqual(built["rules"], 2 if with_factory_rule else 1)
        return out

    def listed(self):
        return lines(self.d.console("rules", "list", "--json").stdout)

    # -- the test ------------------------------------------------------------

    def test_local_layer_and_bundle_store(self):
        d = self.d
        # Factory bundle, no local layer: the phrase scores 1.0 and is delivered.
        code, text = self.send(work_from_home(1))
        self.assertEqual(code, 250, text)
        self.assertEqual(self.reasons_of("note 1").get(FACTORY_RULE), 1.0)

        # A local file: an override of the factory rule and a rule of its own.
        self.write_local("50-site.rules",
                         "# site rules\nscore %s 20\n\nrule LOCAL_PUSHTEST\n  description ours\n  score 0.25\n"
                         "  target subject\n  pattern /pushtest/i\n" % FACTORY_RULE)
        check = json.loads(d.console("rules", "local", "check", "--json").stdout)
        self.assertEqual(check["bundle"], 1)
        self.assertEqual([(o["rule"], o["score"], o["bundle_score"]) for o in check["overrides"]],
                         [(FACTORY_RULE, 20, 1.0)])
        self.assertEqual([r["rule"] for r in check["rules"]], ["LOCAL_PUSHTEST"])
        # Until the reload the engine scans as before.
        self.assertEqual(self.send(work_from_home(2))[0], 250)
        reload = json.loads(d.console("rules", "local", "reload", "--json").stdout)
        self.assertEqual(reload["generation"], 1)
        self.wait_log_count("rules.local_reloaded", 1)
        code, text = self.send(work_from_home(3))
        self.assertEqual(code, 550, text)
        # mxguard scan uses the same layer.
        msg = os.path.join(d.dir, "wfh.eml")
        with open(msg, "w") as f:
            f.write(work_from_home(4))
        scanned = json.loads(d.console("scan", "--json", "--domain", "example.com", msg).stdout)
        self.assertEqual(scanned["action"], "reject")
        self.assertIn({"rule": FACTORY_RULE, "score": 20.0}, scanned["reasons"])

        # A bad layer: the console refuses it naming the file and line...
        self.write_local("60-bad.rules", "\n\nscore NO_SUCH_RULE 3\n")
        p = d.console("rules", "local", "reload", check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("60-bad.rules:3: score override of unknown rule NO_SUCH_RULE", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        p = d.console("scan", msg, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("60-bad.rules:3", p.stderr)
        # ...and an engine that reads it anyway (the reload counter moved by a
        # console whose local_dir is another, good, directory) logs it and
        # keeps the set in force: the override still rejects.
        other = os.path.join(d.dir, "other.toml")
        with open(d.config) as f:
            conf = f.read().replace("keep = 3\n", 'keep = 3\nlocal_dir = "%s"\n' % os.path.join(d.dir, "none"))
        with open(other, "w") as f:
            f.write(conf)
        subprocess.run([MXGUARD, "--config", other, "rules", "local", "reload"], check=True, capture_output=True,
                       timeout=60)
        log = self.wait_log_count("rules.local_failed", 1)
        failed = [x for x in log.splitlines() if "rules.local_failed" in x][-1]
        self.assertIn("60-bad.rules:3: score override of unknown rule NO_SUCH_RULE", failed)
        self.assertIn("keeping=previous", failed)
        self.assertEqual(self.send(work_from_home(5))[0], 550)
        os.unlink(os.path.join(self.local, "60-bad.rules"))
        d.console("rules", "local", "reload")
        self.wait_log_count("rules.local_reloaded", 2)

        # Keys: trusted with a name; `rules keys` shows it with its public key.
        key = os.path.join(d.dir, "signing.key")
        pub = json.loads(d.console("rules", "keygen", "-o", key, "--json").stdout)["public_key"]
        trusted = json.loads(d.console("rules", "trust", "ops", pub, "--json").stdout)
        self.assertEqual((trusted["name"], trusted["key"]), ("ops", pub))
        keys = lines(d.console("rules", "keys", "--json").stdout)
        self.assertEqual([(k["name"], k["key"]) for k in keys], [("ops", pub)])
        self.assertRegex(keys[0]["added"], r"^\d{4}-\d\d-\d\dT")
        table = d.console("rules", "keys").stdout
        self.assertIn(pub, table)
        self.assertIn("ops", table)

        # A bundle without the overridden rule is refused: the layer would not apply.
        lacking = self.build(key, 9, with_factory_rule=False)
        p = d.console("rules", "push", lacking, check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("50-site.rules:2: score override of unknown rule %s" % FACTORY_RULE, p.stderr)
        self.assertEqual(len(self.listed()), 1)

        # Push bundle 2: the engine swaps, and the override still applies on top.
        b2 = self.build(key, 2)
        active1 = self.count("rules.active bundle=1 ")
        pushed = json.loads(d.console("rules", "push", b2, "--json").stdout)
        self.assertEqual((pushed["bundle"], pushed["active"], pushed["key"], pushed["pruned"]), (2, True, "ops", []))
        self.wait_log_count("rules.active bundle=2 ", 1)
        code, text = self.send(work_from_home(6))
        self.assertEqual(code, 550, text)
        self.send(pushtest(6))
        self.assertEqual(self.reasons_of("pushtest 6"),
                         {"TEST_PUSHED_2": 0.5, "LOCAL_PUSHTEST": 0.25})
        self.assertEqual(self.reasons_of("note 6").get(FACTORY_RULE), 20.0)

        # The same bundle again: nothing stored, exit 0, it says so.
        p = d.console("rules", "push", b2)
        self.assertIn("Bundle 2", p.stdout)
        self.assertIn("stored already and active: nothing changed", p.stdout)
        again = json.loads(d.console("rules", "push", b2, "--json").stdout)
        self.assertEqual((again["bundle"], again["unchanged"], again["active"]), (2, True, True))
        self.assertEqual(len(self.listed()), 2)

        # rules.keep = 3: pushing 3, 4 and 5 prunes bundle 2, never the factory bundle.
        b3, b4, b5 = self.build(key, 3), self.build(key, 4), self.build(key, 5)
        self.assertEqual(json.loads(d.console("rules", "push", b3, "--json").stdout)["pruned"], [])
        self.assertEqual(json.loads(d.console("rules", "push", b4, "--json").stdout)["pruned"], [])
        out = d.console("rules", "push", b5).stdout
        self.assertIn("Bundle 5", out)
        self.assertIn("Pruned 1 old bundle beyond rules.keep = 3: 2.", out)
        listed = self.listed()
        self.assertEqual([b["bundle"] for b in listed], [1, 3, 4, 5])
        self.assertEqual([b["active"] for b in listed], [False, False, False, True])
        self.assertEqual([b["key"] for b in listed], [None, "ops", "ops", "ops"])
        self.assertTrue(listed[0]["factory"])
        table = d.console("rules", "list").stdout
        self.assertIn("SIGNED BY", table)
        self.assertEqual(len(re.findall(r"\bops\b", table)), 3, table)
        self.wait_log_count("rules.active bundle=5 ", 1)

        # Rollback to 4, then activate 5: forward again, and the engine follows.
        active4, active5 = self.count("rules.active bundle=4 "), self.count("rules.active bundle=5 ")
        back = json.loads(d.console("rules", "rollback", "--json").stdout)
        self.assertEqual((back["bundle"], back["from"]), (4, 5))
        self.wait_log_count("rules.active bundle=4 ", active4 + 1)
        self.send(pushtest(7))
        self.assertIn("TEST_PUSHED_4", self.reasons_of("pushtest 7"))
        # A same-digest push of a stored bundle that is not active names it.
        p = d.console("rules", "push", b5)
        self.assertIn("Bundle 5", p.stdout)
        self.assertIn("not active", p.stdout)
        self.assertIn("mxguard rules activate 5", p.stdout)
        self.assertEqual(len(self.listed()), 4)
        fwd = json.loads(d.console("rules", "activate", "5", "--json").stdout)
        self.assertEqual((fwd["bundle"], fwd["from"], fwd["active"]), (5, 4, True))
        self.wait_log_count("rules.active bundle=5 ", active5 + 1)
        self.send(pushtest(8))
        self.assertIn("TEST_PUSHED_5", self.reasons_of("pushtest 8"))
        self.assertEqual(self.send(work_from_home(8))[0], 550)
        # Activating the active one changes nothing; unknown and pruned numbers are refused.
        self.assertIn("active already", d.console("rules", "activate", "5").stdout)
        for n in ("99", "2"):
            p = d.console("rules", "activate", n, check=False)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("there is no stored bundle %s (stored: 1, 3, 4, 5" % n, p.stderr)
        # The factory bundle again: the override applies there too.
        d.console("rules", "activate", "1")
        self.wait_log_count("rules.active bundle=1 ", active1 + 1)
        code, text = self.send(work_from_home(9))
        self.assertEqual(code, 550, text)
        self.assertEqual(self.reasons_of("note 9").get(FACTORY_RULE), 20.0)

        # Score 0 silences the rule: delivered, and not a reason any more.
        self.write_local("50-site.rules", "score %s 0\n" % FACTORY_RULE)
        d.console("rules", "local", "reload")
        self.wait_log_count("rules.local_reloaded", 3)
        code, text = self.send(work_from_home(10))
        self.assertEqual(code, 250, text)
        self.assertNotIn(FACTORY_RULE, self.reasons_of("note 10"))

        # Untrusting prints what was removed.
        gone = json.loads(d.console("rules", "untrust", "ops", "--json").stdout)
        self.assertEqual((gone["name"], gone["key"], gone["removed"]), ("ops", pub, True))

    def test_bad_local_layer_at_start(self):
        """An engine started with a bad local file logs it and scans with the bundle alone."""
        d = self.d
        d.stop()
        self.write_local("10-broken.rules", "rule BROKEN\n  description no score\n  target text\n"
                                            "  pattern /x/\n")
        d.start()
        log = self.wait_log_count("rules.local_failed", 1)
        failed = [x for x in log.splitlines() if "rules.local_failed" in x][-1]
        self.assertIn("10-broken.rules:1: rule BROKEN: no score", failed)
        self.assertIn("keeping=bundle_only", failed)
        code, text = self.send(work_from_home(1))
        self.assertEqual(code, 250, text)
        self.assertEqual(self.reasons_of("note 1").get(FACTORY_RULE), 1.0)
        # Fixed and reloaded, the layer is in force without a restart.
        self.write_local("10-broken.rules", "score %s 12\n" % FACTORY_RULE)
        d.console("rules", "local", "reload")
        self.wait_log_count("rules.local_reloaded", 1)
        code, text = self.send(work_from_home(2))
        self.assertEqual(code, 550, text)


class FactoryUpgradeTest(unittest.TestCase):
    """New binaries with new factory rules: the new factory bundle replaces
    the old one while a factory bundle is active, and the local layer stays
    on top."""

    def test_new_factory_rules_replace_the_old_and_keep_the_local_layer(self):
        d = Daemon(verdicts=True)
        self.addCleanup(d.cleanup)
        old = os.path.join(d.dir, "old-factory")
        os.makedirs(old)
        with open(os.path.join(old, "10-old.rules"), "w") as f:
            f.write("rule %s\n  description work from home (old factory)\n  score 1.0\n  target text\n"
                    "  pattern /work from home/i\n"
                    "rule OLD_FACTORY_ONLY\n  description only in the old factory rules\n  score 0.5\n"
                    "  target text\n  pattern /fridays/i\n" % FACTORY_RULE)
        with open(d.config) as f:
            config = f.read()
        with open(d.config, "w") as f:
            f.write(config.replace("[smtp]\n", '[scan]\nrules_dir = "%s"\n[smtp]\n' % old, 1))
        local = os.path.join(d.state, "rules", "local")
        os.makedirs(local)
        with open(os.path.join(local, "50-site.rules"), "w") as f:
            f.write("score %s 7\n" % FACTORY_RULE)
        d.start()
        self.addCleanup(d.stop)

        def reasons(subject):
            deadline = time.time() + 15
            while time.time() < deadline:
                for e in lines(d.console("feed", "--json", "-n", "100000").stdout):
                    if e["subject"] == subject:
                        return {r["rule"]: r["score"] for r in e["reasons"]}
                time.sleep(0.1)
            self.fail("no feed entry %r" % subject)

        def send(n):
            with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
                s.sendmail("carol@sender.test", ["bob@example.com"], work_from_home(n).encode())

        send(1)
        self.assertEqual(reasons("note 1"), {FACTORY_RULE: 7.0, "OLD_FACTORY_ONLY": 0.5})
        first = lines(d.console("rules", "list", "--json").stdout)
        self.assertEqual(len(first), 1)
        # The upgrade: the same state dir, the rules installed with the binaries.
        d.stop()
        with open(d.config, "w") as f:
            f.write(config)
        d.start()
        log = d.wait_log("rules.factory_upgraded")
        self.assertRegex(log, r"rules\.factory_upgraded bundle=2 replaces=1 ")
        listed = lines(d.console("rules", "list", "--json").stdout)
        self.assertEqual([b["active"] for b in listed if b["bundle"] == 2], [True], listed)
        self.assertTrue(all(b["factory"] for b in listed), listed)
        send(2)
        got = reasons("note 2")
        self.assertNotIn("OLD_FACTORY_ONLY", got)
        self.assertEqual(got.get(FACTORY_RULE), 7.0, got)  # the local override survived
        # Once upgraded, a restart changes nothing.
        d.stop()
        d.start()
        self.assertEqual(d.read_log().count("rules.factory_upgraded"), 1)
        self.assertEqual(len(lines(d.console("rules", "list", "--json").stdout)), 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
