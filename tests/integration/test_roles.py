"""Roles and tenant isolation in the console (--as), and the audit log."""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mxg import Daemon  # noqa: E402


class Roles(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(domains=())
        c = self.d.console
        c("customer", "add", "acme")
        c("customer", "add", "globex")
        c("domain", "add", "acme.example", "--customer", "acme", "--backend", "10.0.0.1", "--active")
        c("domain", "add", "globex.example", "--customer", "globex", "--backend", "10.0.0.2", "--active")
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write("correct horse battery staple\n")
        self.pwfile = f.name
        c("user", "add", "acme-admin", "--role", "customer-admin", "--customer", "acme", "--password-file",
          self.pwfile)
        c("user", "add", "globex-admin", "--role", "customer-admin", "--customer", "globex")
        c("user", "add", "acme-pm", "--role", "postmaster", "--domain", "acme.example")
        c("user", "add", "anna", "--role", "user", "--address", "anna@acme.example")

    def tearDown(self):
        os.unlink(self.pwfile)
        self.d.cleanup()

    def as_(self, user, *args):
        return self.d.console("--as", user, *args, check=False)

    def snapshot(self):
        c = self.d.console
        return (c("domain", "list", "--json").stdout, c("customer", "list", "--json").stdout,
                c("user", "list", "--json").stdout, c("list", "block", "show", "--json").stdout,
                c("list", "block", "show", "--domain", "globex.example", "--json").stdout,
                c("recipient", "list", "--domain", "globex.example", "--json").stdout)

    def test_customer_admin_cannot_touch_another_customer(self):
        before = self.snapshot()
        attempts = [
            ("domain", "show", "globex.example"),
            ("domain", "show", "globex.example", "--json"),
            ("domain", "set", "globex.example", "tls=none"),
            ("domain", "suspend", "globex.example"),
            ("domain", "resume", "globex.example"),
            ("domain", "remove", "globex.example"),
            ("domain", "verify", "globex.example"),
            ("domain", "check-mx", "globex.example"),
            ("domain", "add", "new.example", "--customer", "globex", "--backend", "10.0.0.9"),
            ("domain", "add", "new.example", "--customer", "acme", "--backend", "10.0.0.9", "--active"),
            ("recipient", "add", "x@globex.example"),
            ("recipient", "remove", "x@globex.example"),
            ("recipient", "list", "--domain", "globex.example"),
            ("list", "block", "add", "sender", "a@b.example", "--domain", "globex.example"),
            ("list", "allow", "show", "--domain", "globex.example"),
            ("list", "block", "add", "ip", "192.0.2.1"),
            ("list", "block", "show"),
            ("customer", "add", "initech"),
            ("user", "add", "mole", "--role", "postmaster", "--domain", "globex.example"),
            ("user", "add", "boss", "--role", "customer-admin", "--customer", "acme"),
            ("user", "remove", "globex-admin"),
            ("queue", "list", "--domain", "globex.example"),
        ]
        for args in attempts:
            p = self.as_("acme-admin", *args)
            self.assertEqual(p.returncode, 5, (args, p.stdout, p.stderr))
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
            self.assertIn("not permitted", p.stderr)
        self.assertEqual(self.snapshot(), before)
        # Another customer's domain and a missing one are refused alike: no name leaks.
        a = self.as_("acme-admin", "domain", "show", "globex.example").stderr.replace("globex.example", "X")
        b = self.as_("acme-admin", "domain", "show", "nosuch.example").stderr.replace("nosuch.example", "X")
        self.assertEqual(a, b)

    def test_customer_admin_sees_and_changes_only_their_own(self):
        domains = [json.loads(l)["domain"] for l in self.as_("acme-admin", "domain", "list", "--json").stdout.splitlines()]
        self.assertEqual(domains, ["acme.example"])
        customers = [json.loads(l)["name"] for l in
                     self.as_("acme-admin", "customer", "list", "--json").stdout.splitlines()]
        self.assertEqual(customers, ["acme"])
        users = {json.loads(l)["name"] for l in self.as_("acme-admin", "user", "list", "--json").stdout.splitlines()}
        self.assertEqual(users, {"acme-admin", "acme-pm", "anna"})
        self.assertEqual(self.as_("acme-admin", "domain", "set", "acme.example", "tls=encrypt").returncode, 0)
        self.assertEqual(self.as_("acme-admin", "recipient", "add", "bob@acme.example").returncode, 0)
        self.assertEqual(self.as_("acme-admin", "list", "block", "add", "sender-domain", "spam.example",
                                  "--domain", "acme.example").returncode, 0)
        self.assertEqual(self.as_("acme-admin", "domain", "add", "acme2.example", "--customer", "acme",
                                  "--backend", "10.0.0.1").returncode, 0)

    def test_postmaster_and_user_scopes(self):
        self.assertEqual(self.as_("acme-pm", "domain", "set", "acme.example", "reject_threshold=20").returncode, 0)
        self.assertEqual(self.as_("acme-pm", "domain", "remove", "acme.example").returncode, 5)
        self.assertEqual(self.as_("acme-pm", "domain", "show", "globex.example").returncode, 5)
        self.assertEqual(self.as_("acme-pm", "user", "add", "x", "--role", "customer-admin", "--customer",
                                  "acme").returncode, 5)
        for args in (("domain", "show", "acme.example"), ("domain", "set", "acme.example", "tls=none"),
                     ("recipient", "list", "--domain", "acme.example")):
            self.assertEqual(self.as_("anna", *args).returncode, 5, args)
        self.assertEqual(self.as_("nobody", "domain", "list").returncode, 2)

    def test_audit_records_every_change_with_secrets_masked(self):
        self.as_("acme-admin", "domain", "set", "acme.example", "tls=encrypt")
        self.d.console("domain", "suspend", "globex.example")
        entries = [json.loads(l) for l in self.d.console("audit", "--json").stdout.splitlines()]
        actions = [(e["principal"], e["action"], e["object"]) for e in entries]
        self.assertIn(("acme-admin", "domain.set", "acme.example"), actions)
        self.assertIn("domain.suspend", [a for _, a, _ in actions])
        self.assertIn("user.add", [a for _, a, _ in actions])
        change = [e for e in entries if e["action"] == "domain.set"][0]
        self.assertEqual(change["before"]["tls"], "may")
        self.assertEqual(change["after"]["tls"], "encrypt")
        times = [e["time"] for e in entries]
        self.assertEqual(times, sorted(times))
        added = [e for e in entries if e["action"] == "user.add" and e["object"] == "acme-admin"][0]
        self.assertTrue(added["after"]["has_password"])
        everything = self.d.console("audit", "--json").stdout + self.d.console("user", "list", "--json").stdout
        self.assertNotIn("argon2", everything)
        self.assertNotIn("correct horse", everything)

    def test_audit_as_a_customer_shows_only_that_customers_entries(self):
        # Was refused outright; now each customer's admin reads their own part (issue 17).
        self.d.console("domain", "suspend", "globex.example")
        self.as_("acme-admin", "domain", "set", "acme.example", "tls=encrypt")
        seen = lambda who: [json.loads(l) for l in self.as_(who, "audit", "--json").stdout.splitlines()]
        acme = {e["object"] for e in seen("acme-admin")}
        self.assertEqual(acme, {"acme", "acme.example", "acme-admin", "acme-pm", "anna"})
        self.assertEqual({e["object"] for e in seen("globex-admin")}, {"globex", "globex.example", "globex-admin"})
        self.assertEqual({e["object"] for e in seen("acme-pm")}, {"acme.example", "acme-pm", "anna"})
        p = self.as_("anna", "audit")
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertIn("not permitted", p.stderr)


class RelayPassword(unittest.TestCase):
    def test_password_from_file_never_printed_and_empty_keeps_it(self):
        d = Daemon(domains=())
        secret = "s3cret-relay-pass"
        with tempfile.TemporaryDirectory() as tmp:
            pw, empty = os.path.join(tmp, "pw"), os.path.join(tmp, "empty")
            with open(pw, "w") as f:
                f.write(secret + "\n")
            open(empty, "w").close()
            try:
                d.console("domain", "add", "relay.example", "--customer", "acme", "--backend", "10.0.0.3",
                          "--trust", "auth", "--auth-user", "mx", "--auth-password-file", pw, "--active")
                shown = json.loads(d.console("domain", "show", "relay.example", "--json").stdout)
                self.assertTrue(shown["backend"]["auth_password_set"])
                d.console("domain", "set", "relay.example", "tls=encrypt", "--auth-password-file", empty)
                shown = json.loads(d.console("domain", "show", "relay.example", "--json").stdout)
                self.assertTrue(shown["backend"]["auth_password_set"])
                d.console("domain", "set", "relay.example", "--auth-password-file", "-", input="another-pass\n")
                audit = d.console("audit", "--json").stdout
                self.assertIn('"auth_password":"***"', audit.replace(" ", ""))
                everything = audit + d.console("domain", "show", "relay.example").stdout + \
                    d.console("domain", "list", "--json").stdout
                self.assertNotIn(secret, everything)
                self.assertNotIn("another-pass", everything)
                p = d.console("domain", "set", "relay.example", check=False)
                self.assertEqual(p.returncode, 2)
            finally:
                d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
