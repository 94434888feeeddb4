"""Every console command's human and --json output on one populated state:
exit 0, JSON lines that parse with the documented keys, human output that
names the objects and carries no control bytes or secrets."""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mxg import Daemon  # noqa: E402


class Outputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(domains=())
        c = cls.d.console
        # Active in list mode before its first recipient: a risk confirmed with --force.
        c("domain", "add", "acme.example", "--customer", "acme", "--backend", "10.0.0.1", "--active",
          "--recipients", "list", "--force")
        c("domain", "add", "pending.example", "--customer", "acme", "--backend", "[2001:db8::5]:2525")
        c("recipient", "add", "anna@acme.example")
        c("list", "block", "add", "ip", "192.0.2.0/24")
        c("list", "allow", "add", "sender-domain", "partner.example", "--domain", "acme.example")
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write("a long enough password\n")
        c("user", "add", "acme-admin", "--role", "customer-admin", "--customer", "acme", "--password-file", f.name)
        os.unlink(f.name)

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    # (command, keys every JSON object must have, text the human output must contain)
    MATRIX = [
        (("customer", "list"), {"name", "domains", "created"}, "acme"),
        (("domain", "list"), {"domain", "customer", "status", "backend"}, "pending.example"),
        (("domain", "show", "acme.example"), {"domain", "customer", "status", "verification", "backend",
                                              "recipients", "recipient_delimiter", "thresholds", "quarantine_days"},
         "acme.example"),
        (("recipient", "list", "--domain", "acme.example"), {"address", "domain", "kind"}, "anna@acme.example"),
        (("list", "block", "show"), {"list", "scope", "kind", "value", "added"}, "192.0.2.0/24"),
        (("list", "allow", "show", "--domain", "acme.example"), {"list", "scope", "kind", "value"}, "partner.example"),
        (("user", "list"), {"name", "role", "customer", "has_password"}, "acme-admin"),
        (("audit",), {"time", "principal", "action", "object", "before", "after"}, "domain.add"),
        (("queue", "list"), set(), ""),
    ]

    def test_every_command_human_and_json(self):
        for args, keys, text in self.MATRIX:
            with self.subTest(args=args):
                human = self.d.console(*args)
                self.assertEqual(human.returncode, 0)
                self.assertIn(text, human.stdout)
                self.assertFalse(any(ord(ch) < 32 and ch not in "\n" for ch in human.stdout), human.stdout)
                js = self.d.console(*args, "--json")
                lines = [l for l in js.stdout.splitlines() if l.strip()]
                if keys:
                    self.assertTrue(lines, args)
                for line in lines:
                    obj = json.loads(line)
                    self.assertTrue(keys <= set(obj), (args, keys - set(obj)))
                for out in (human.stdout, js.stdout):
                    self.assertNotIn("argon2", out)
                    self.assertNotIn("a long enough password", out)

    def test_domain_show_human_names_the_records_to_publish(self):
        out = self.d.console("domain", "show", "pending.example").stdout
        self.assertIn("_mxguard-verify.pending.example", out)
        self.assertIn("TXT", out)
        self.assertIn("300", out)
        self.assertIn("[2001:db8::5]:2525", out)

    def test_help_for_every_group(self):
        for group in ("customer", "domain", "queue", "recipient", "list", "user", "audit"):
            p = self.d.console(group, "--help")
            self.assertEqual(p.returncode, 0, group)
            self.assertIn("Usage:", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
