#!/usr/bin/env python3
"""Rough edges of the console a new operator hit (issue 16): --version, a
suggestion for a mistyped command, customer remove/rename, user passwd, the
domain as a positional argument, list kinds, wildcard allow/block entries
(through the running engine too), --json on every write, the exit codes in
--help and risky settings that need --force. (The check-mx wording for a
backup role needs a DNS server: test_dns.py.)"""

import json
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402

PROJECT_VERSION_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "meson.build")


def project_version():
    with open(PROJECT_VERSION_FILE) as f:
        text = f.read()
    start = text.index("version")
    quote = text.index("'", start)
    return text[quote + 1:text.index("'", quote + 1)]


class ConsoleEdges(unittest.TestCase):
    def setUp(self):
        # The engine is not needed: every command here works on the config store.
        self.d = mxg.Daemon(domains=("example.com",))
        self.addCleanup(lambda: shutil.rmtree(self.d.dir, ignore_errors=True))

    def cli(self, *args, input=None):
        return self.d.console(*args, check=False, input=input)

    def test_demo_configuration_is_announced(self):
        """No --config, no $MXGUARD_CONFIG, no /etc/mxguard/mxguard.toml: the
        console says on stderr that it uses the demo configuration, and its
        stdout stays as it was."""
        if os.path.exists("/etc/mxguard/mxguard.toml"):
            self.skipTest("/etc/mxguard/mxguard.toml exists on this machine")
        work = self.d.dir
        env = {k: v for k, v in os.environ.items() if k != "MXGUARD_CONFIG"}
        p = subprocess.run([os.path.abspath(mxg.MXGUARD), "domain", "list", "--json"], cwd=work, env=env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("using the demo configuration (state in ./mxguard-state)", p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertTrue(os.path.isdir(os.path.join(work, "mxguard-state")))
        # With a configuration named, nothing is said.
        p = self.d.console("domain", "list")
        self.assertNotIn("demo configuration", p.stderr)

    def test_version_and_suggestions(self):
        p = self.cli("--version")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "mxguard %s" % project_version())
        p = self.cli("domian", "list")
        self.assertEqual(p.returncode, 2)
        self.assertIn("mxguard: unknown command 'domian'; did you mean 'domain'?", p.stderr)
        p = self.cli("domain", "lsit")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'lsit'; did you mean 'list'?", p.stderr)
        # Nothing close: no suggestion, still a usage error.
        p = self.cli("zzzzzzzz")
        self.assertEqual(p.returncode, 2)
        self.assertNotIn("did you mean", p.stderr)

    def test_customer_remove_and_rename(self):
        # acme owns example.com (from the harness) and a customer-admin.
        self.d.console("user", "add", "boss", "--role", "customer-admin", "--customer", "acme")
        p = self.cli("customer", "remove", "acme")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("still has 1 domain and 1 user", p.stderr)
        p = self.cli("--as", "boss", "customer", "rename", "acme", "other")
        self.assertEqual(p.returncode, 5, p.stderr)
        self.d.console("customer", "add", "taken")
        p = self.cli("customer", "rename", "acme", "taken")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("customer taken already exists", p.stderr)
        self.d.console("customer", "rename", "acme", "globex")
        domains = [json.loads(l) for l in self.d.console("domain", "list", "--json").stdout.splitlines()]
        self.assertEqual([d["customer"] for d in domains], ["globex"])
        users = [json.loads(l) for l in self.d.console("user", "list", "--json").stdout.splitlines()]
        self.assertEqual([u["customer"] for u in users if u["name"] == "boss"], ["globex"])
        names = [json.loads(l)["name"] for l in self.d.console("customer", "list", "--json").stdout.splitlines()]
        self.assertEqual(sorted(names), ["globex", "taken"])
        self.d.console("customer", "remove", "taken")
        p = self.cli("customer", "remove", "taken")
        self.assertIn("no such customer: taken", p.stderr)
        actions = [json.loads(l)["action"] for l in self.d.console("audit", "--json").stdout.splitlines()]
        self.assertIn("customer.rename", actions)
        self.assertIn("customer.remove", actions)

    def test_user_passwd_from_stdin(self):
        self.d.console("domain", "add", "other.test", "--customer", "rival", "--backend", "127.0.0.1:2")
        self.d.console("user", "add", "boss", "--role", "customer-admin", "--customer", "acme")
        self.d.console("user", "add", "pm", "--role", "postmaster", "--domain", "example.com")
        self.d.console("user", "add", "stranger", "--role", "postmaster", "--domain", "other.test")
        def has_password(name):
            for line in self.d.console("user", "list", "--json").stdout.splitlines():
                u = json.loads(line)
                if u["name"] == name:
                    return u["has_password"]
        self.assertFalse(has_password("pm"))
        self.d.console("user", "passwd", "pm", input="correct horse battery\n")
        self.assertTrue(has_password("pm"))
        p = self.cli("user", "passwd", "pm", input="short\n")
        self.assertEqual(p.returncode, 2)
        self.d.console("--as", "boss", "user", "passwd", "pm", input="another long one\n")
        p = self.cli("--as", "boss", "user", "passwd", "stranger", input="another long one\n")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no such user: stranger", p.stderr)
        self.assertFalse(has_password("stranger"))
        actions = [json.loads(l)["action"] for l in self.d.console("audit", "--json").stdout.splitlines()]
        self.assertEqual(actions.count("user.passwd"), 2)


    def refused(self, p, code, *phrases):
        """One line on stderr naming every phrase, exit status `code`."""
        self.assertEqual(p.returncode, code, "stdout=%r stderr=%r" % (p.stdout, p.stderr))
        lines = [l for l in p.stderr.splitlines() if not l.startswith("mxguard: no --config")]
        self.assertEqual(len(lines), 1, p.stderr)
        for phrase in phrases:
            self.assertIn(phrase, lines[0])
        return lines[0]

    def jsons(self, *args, input=None):
        p = self.d.console(*args, input=input)
        lines = p.stdout.splitlines()
        self.assertTrue(lines, "no output from %s" % (args,))
        return [json.loads(l) for l in lines]

    def test_domain_is_a_positional_argument(self):
        self.d.console("domain", "set", "example.com", "recipients=list", "--force")
        # New form: DOMAIN then local parts or addresses of that domain.
        self.d.console("recipient", "add", "example.com", "alice", "Bob@Example.com")
        # The old form, addresses only, still works.
        self.d.console("recipient", "add", "carol@example.com")
        got = sorted(r["address"] for r in self.jsons("recipient", "list", "example.com", "--json"))
        self.assertEqual(got, ["alice@example.com", "bob@example.com", "carol@example.com"])
        old = sorted(r["address"] for r in self.jsons("recipient", "list", "--domain", "example.com", "--json"))
        self.assertEqual(old, got)
        self.refused(self.cli("recipient", "add", "example.com", "eve@other.test"), 2, "eve@other.test is not in example.com")
        self.refused(self.cli("recipient", "add", "example.com"), 2, "no address after the domain example.com")
        self.refused(self.cli("recipient", "list"), 2, "the domain is missing", "recipient list DOMAIN")
        self.refused(self.cli("recipient", "list", "example.com", "--domain", "example.com"), 2, "given twice")
        self.d.console("recipient", "remove", "example.com", "carol")
        with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=self.d.dir, delete=False) as f:
            f.write("dave@example.com\n")
        self.d.console("recipient", "import", "example.com", f.name)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=self.d.dir, delete=False) as g:
            g.write("erin@example.com\n")
        self.d.console("recipient", "import", g.name, "--domain", "example.com")
        got = sorted(r["address"] for r in self.jsons("recipient", "list", "example.com", "--json"))
        self.assertEqual(got, ["alice@example.com", "bob@example.com", "dave@example.com", "erin@example.com"])
        # Lists: [DOMAIN] KIND VALUE, and the old --domain spelling.
        self.d.console("list", "block", "add", "example.com", "sender", "rival@competitor.test")
        self.d.console("list", "block", "add", "sender", "other@competitor.test", "--domain", "example.com")
        shown = self.jsons("list", "block", "show", "example.com", "--json")
        self.assertEqual(sorted(e["value"] for e in shown), ["other@competitor.test", "rival@competitor.test"])
        self.assertEqual({e["scope"] for e in shown}, {"example.com"})
        self.assertEqual(self.jsons("list", "block", "show", "--domain", "example.com", "--json"), shown)
        self.assertEqual(self.d.console("list", "block", "show", "--json").stdout, "")  # the global list is apart
        self.d.console("list", "block", "remove", "example.com", "sender", "rival@competitor.test")
        self.assertEqual(len(self.jsons("list", "block", "show", "example.com", "--json")), 1)

    def test_list_add_without_a_kind_names_the_kinds(self):
        for args in (("list", "block", "add", "spam@evil.test"),
                     ("list", "allow", "add", "example.com", "friend@partner.test"),
                     ("list", "block", "add"),
                     ("list", "block", "add", "senders", "spam@evil.test")):
            line = self.refused(self.cli(*args), 2, "sender", "sender-domain", "ip")
            self.assertIn("KIND VALUE", line)
        self.assertEqual(self.d.console("list", "block", "show", "--json").stdout, "")

    def test_wildcard_entries_are_normalised_or_refused(self):
        self.d.console("list", "block", "add", "sender", "*@Evil.Test")
        self.d.console("list", "block", "add", "sender-domain", "*.spam.test")
        self.d.console("list", "block", "add", "sender", "*@*.junk.test")
        shown = {(e["kind"], e["value"]) for e in self.jsons("list", "block", "show", "--json")}
        self.assertEqual(shown, {("sender", "*@evil.test"), ("sender-domain", "*.spam.test"),
                                 ("sender-domain", "*.junk.test")})
        for bad in ("a*@evil.test", "*", "*evil.test", "x@*.evil.test"):
            self.refused(self.cli("list", "block", "add", "sender", bad), 2, "*@domain", "*.domain")
        self.refused(self.cli("list", "block", "add", "ip", "192.0.2.*"), 2, "CIDR")
        self.assertEqual(len(self.jsons("list", "block", "show", "--json")), 3)

    def test_json_on_every_write(self):
        j = self.jsons("customer", "add", "globex", "--json")
        self.assertEqual([(o["name"], o["domains"]) for o in j], [("globex", 0)])
        j = self.jsons("customer", "rename", "globex", "initech", "--json")
        self.assertEqual(j, [{"name": "initech", "renamed_from": "globex"}])
        j = self.jsons("domain", "add", "new.test", "--customer", "initech", "--backend", "mail.new.test:2525", "--json")
        self.assertEqual((j[0]["domain"], j[0]["customer"], j[0]["status"]), ("new.test", "initech", "pending_verification"))
        j = self.jsons("domain", "set", "example.com", "quarantine_days=9", "--json")
        self.assertEqual((j[0]["domain"], j[0]["quarantine_days"]), ("example.com", 9))
        self.assertEqual(self.jsons("domain", "suspend", "example.com", "--json")[0]["status"], "suspended")
        self.assertEqual(self.jsons("domain", "resume", "example.com", "--json")[0]["status"], "active")
        j = self.jsons("recipient", "add", "example.com", "alice", "bob", "--json")
        self.assertEqual([(o["address"], o["added"]) for o in j], [("alice@example.com", True), ("bob@example.com", True)])
        j = self.jsons("recipient", "remove", "example.com", "bob", "--json")
        self.assertEqual([(o["address"], o["removed"]) for o in j], [("bob@example.com", True)])
        with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=self.d.dir, delete=False) as f:
            f.write("carol@example.com\nalice@example.com\n")
        j = self.jsons("recipient", "import", "example.com", f.name, "--json")
        self.assertEqual((j[0]["domain"], j[0]["addresses"], j[0]["new"]), ("example.com", 2, 1))
        j = self.jsons("list", "block", "add", "example.com", "sender", "*@Evil.test", "--json")
        self.assertEqual((j[0]["list"], j[0]["scope"], j[0]["kind"], j[0]["value"], j[0]["added_now"]),
                         ("block", "example.com", "sender", "*@evil.test", True))
        j = self.jsons("list", "block", "remove", "example.com", "sender", "*@evil.test", "--json")
        self.assertEqual(j[0]["removed"], True)
        j = self.jsons("user", "add", "pm", "--role", "postmaster", "--domain", "example.com", "--json")
        self.assertEqual((j[0]["name"], j[0]["role"], j[0]["domain"], j[0]["has_password"]),
                         ("pm", "postmaster", "example.com", False))
        j = self.jsons("user", "passwd", "pm", "--json", input="correct horse battery\n")
        self.assertEqual((j[0]["name"], j[0]["has_password"]), ("pm", True))
        self.assertTrue(self.jsons("user", "remove", "pm", "--json")[0]["removed"])
        j = self.jsons("domain", "remove", "new.test", "--json")
        self.assertEqual((j[0]["domain"], j[0]["removed"]), ("new.test", True))
        j = self.jsons("customer", "remove", "initech", "--json")
        self.assertEqual((j[0]["name"], j[0]["removed"]), ("initech", True))
        msg = os.path.join(self.d.dir, "ham.eml")
        with open(msg, "w") as f:
            f.write("From: a@b.test\r\nSubject: hello\r\n\r\nplain words for the model\r\n")
        j = self.jsons("learn", "ham", msg, "--json")
        self.assertEqual((j[0]["learned"], j[0]["as"], j[0]["ham_messages"]), (1, "ham", 1))
        # The queue writes need a message in the queue: one accepted by the engine.
        self.d.start()
        self.addCleanup(self.d.stop)
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
            s.sendmail("sender@client.test", ["alice@example.com"], "Subject: q\r\n\r\nqueued\r\n")
            s.sendmail("sender@client.test", ["alice@example.com"], "Subject: q2\r\n\r\nqueued\r\n")
        ids = sorted(m["id"] for m in self.d.queue())
        self.assertEqual(len(ids), 2)
        j = self.jsons("queue", "retry", ids[0], "--json")
        self.assertEqual([o["id"] for o in j], [ids[0]])
        self.assertIn("next_attempt", j[0])
        j = self.jsons("queue", "retry", "--all", "--json")
        self.assertEqual(sorted(o["id"] for o in j), ids)
        j = self.jsons("queue", "delete", ids[1], "--json")
        self.assertEqual(j, [{"id": ids[1], "deleted": True}])
        j = self.jsons("queue", "bounce", ids[0], "--json")
        self.assertEqual((j[0]["id"], j[0]["bounce"], j[0]["sender"]), (ids[0], True, "sender@client.test"))

    def test_exit_codes_in_help(self):
        p = self.d.console("--help")
        self.assertIn("Exit codes:", p.stdout)
        table = p.stdout[p.stdout.index("Exit codes:"):]
        codes = [int(l.split()[0]) for l in table.splitlines()[1:] if l.strip()]
        self.assertEqual(codes, [0, 1, 2, 3, 4, 5])
        self.assertIn("--force", table)
        # The table is what the commands do.
        self.assertEqual(self.cli("domain", "set", "example.com", "greylist_threshold=-1").returncode, 3)
        self.assertEqual(self.cli("domain", "add", "example.com", "--customer", "acme", "--backend", "h.test").returncode, 4)
        self.d.console("user", "add", "pm", "--role", "postmaster", "--domain", "example.com")
        self.assertEqual(self.cli("--as", "pm", "domain", "remove", "example.com").returncode, 5)
        self.assertEqual(self.cli("domain", "show", "no-such.test").returncode, 2)

    def show(self, domain):
        return json.loads(self.d.console("domain", "show", domain, "--json").stdout)

    def test_risky_settings_need_force(self):
        before = self.show("example.com")
        self.refused(self.cli("domain", "set", "example.com", "greylist_threshold=-1", "quarantine_threshold=5",
                              "reject_threshold=10"), 3, "greylist_threshold=-1 is below 0", "--force")
        self.refused(self.cli("domain", "set", "example.com", "recipients=list"), 3,
                     "recipients=list with no recipients", "--force")
        self.refused(self.cli("domain", "set", "example.com", "tls=dane"), 3,
                     "tls=dane without delivery.dane_trust_anchor", "--force")
        self.refused(self.cli("domain", "set", "example.com", "trust=auth", "auth_user=relay"), 3,
                     "trust=auth without a stored password", "--force")
        self.assertEqual(self.show("example.com"), before)  # nothing written
        # Two risks at once: both named on the one line.
        self.refused(self.cli("domain", "set", "example.com", "tls=dane", "recipients=list"), 3, "tls=dane",
                     "recipients=list")
        # With what makes them safe, or with --force, they go through.
        self.d.console("recipient", "add", "example.com", "alice")
        self.d.console("domain", "set", "example.com", "recipients=list")
        pw = os.path.join(self.d.dir, "pw")
        with open(pw, "w") as f:
            f.write("relay-secret\n")
        self.d.console("domain", "set", "example.com", "trust=auth", "auth_user=relay", "--auth-password-file", pw)
        self.d.console("domain", "set", "example.com", "greylist_threshold=-1", "quarantine_threshold=5",
                       "reject_threshold=10", "--force")
        self.d.console("domain", "set", "example.com", "tls=dane", "--force")
        after = self.show("example.com")
        self.assertEqual((after["recipients"], after["thresholds"]["greylist"], after["backend"]["tls"]), ("list", -1, "dane"))
        # A setting forced earlier does not block an unrelated change.
        self.d.console("domain", "set", "example.com", "quarantine_days=10")
        # domain add: the same settings, refused before anything is written.
        add = ("domain", "add", "new.test", "--customer", "newco", "--backend", "mail.new.test")
        self.refused(self.cli(*add, "--tls", "dane"), 3, "tls=dane", "--force")
        self.refused(self.cli(*add, "--trust", "auth", "--auth-user", "relay"), 3, "trust=auth", "--force")
        self.refused(self.cli(*add, "--recipients", "list", "--active"), 3, "recipients=list", "--force")
        names = [json.loads(l)["domain"] for l in self.d.console("domain", "list", "--json").stdout.splitlines()]
        self.assertEqual(names, ["example.com"])
        customers = [json.loads(l)["name"] for l in self.d.console("customer", "list", "--json").stdout.splitlines()]
        self.assertNotIn("newco", customers)
        # A pending domain gets no mail before it is verified: list mode is fine there.
        self.d.console(*add, "--recipients", "list")
        self.d.console("domain", "add", "dane.test", "--customer", "newco", "--backend", "mail.new.test", "--tls",
                       "dane", "--force")
        # A customer-admin may confirm a risk with --force too.
        self.d.console("user", "add", "boss", "--role", "customer-admin", "--customer", "newco")
        self.refused(self.cli("--as", "boss", "domain", "set", "new.test", "greylist_threshold=-2"), 3, "--force")
        self.d.console("--as", "boss", "domain", "set", "new.test", "greylist_threshold=-2", "--force")


class WildcardThroughTheEngine(unittest.TestCase):
    """A wildcard block entry refuses mail in the running engine: *@domain
    any sender at exactly that domain, *.domain its subdomains only."""

    @classmethod
    def setUpClass(cls):
        cls.d = mxg.Daemon(domains=("example.com", "other.example"))
        c = cls.d.console
        c("list", "block", "add", "sender", "*@evil.test")
        c("list", "block", "add", "sender-domain", "*.spam.test")
        c("list", "block", "add", "other.example", "sender", "*@rival.test")
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        cls.d.cleanup()
        assert code == 0

    def rcpt(self, sender, rcpt="u@example.com"):
        """(code, text) of RCPT TO, or of MAIL FROM when that was refused."""
        with smtplib.SMTP("127.0.0.1", self.d.port, local_hostname="client.test", timeout=30) as s:
            s.ehlo()
            code, text = s.mail(sender)
            if code != 250:
                return code, text.decode()
            code, text = s.rcpt(rcpt)
            return code, text.decode()

    def test_any_sender_at_exactly_the_domain(self):
        for sender in ("anyone@evil.test", "Other.Person@EVIL.test"):
            code, text = self.rcpt(sender)
            self.assertEqual(code, 550, (sender, text))
            self.assertTrue(text.startswith("5.7.1"), text)
        self.assertEqual(self.rcpt("anyone@mail.evil.test")[0], 250)
        self.assertEqual(self.rcpt("anyone@notevil.test")[0], 250)

    def test_any_subdomain_but_not_the_domain(self):
        self.assertEqual(self.rcpt("x@mail.spam.test")[0], 550)
        self.assertEqual(self.rcpt("x@a.b.spam.test")[0], 550)
        self.assertEqual(self.rcpt("x@spam.test")[0], 250)

    def test_a_domain_scoped_wildcard(self):
        self.assertEqual(self.rcpt("boss@rival.test", "u@other.example")[0], 550)
        self.assertEqual(self.rcpt("boss@rival.test", "u@example.com")[0], 250)

    def test_a_message_from_a_blocked_sender_is_not_queued(self):
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
            with self.assertRaises(smtplib.SMTPException):
                s.sendmail("anyone@evil.test", ["u@example.com"], "Subject: x\r\n\r\nblocked\r\n")
        self.assertFalse([m for m in self.d.queue() if m["sender"] == "anyone@evil.test"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
