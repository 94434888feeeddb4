"""RCPT-time policy from the console's state, against the running engine:
list-mode recipients, suspended domains, allow/block lists by sender, sender
domain and client IP, and settings changed while the engine runs."""
import json
import os
import smtplib
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mxg import Daemon, Raw  # noqa: E402


class Policy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(domains=("open.example", "listed.example", "other.example"))
        cls.d.console("recipient", "add", "alice@listed.example", "Bob@listed.example")
        cls.d.console("domain", "set", "listed.example", "recipients=list")
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        cls.d.cleanup()
        assert code == 0

    def rcpt(self, rcpt, sender="s@client.example", source=None):
        """Opens a session and returns (code, text) of RCPT TO, or of MAIL FROM if that failed."""
        with smtplib.SMTP("127.0.0.1", self.d.port, local_hostname="client.example", timeout=10,
                          source_address=(source, 0) if source else None) as s:
            s.ehlo()
            code, text = s.mail(sender)
            if code != 250:
                return code, text.decode()
            code, text = s.rcpt(rcpt)
            return code, text.decode()

    def test_list_mode_rejects_unknown_recipients_before_data(self):
        self.assertEqual(self.rcpt("alice@listed.example")[0], 250)
        self.assertEqual(self.rcpt("BOB@listed.example")[0], 250)
        code, text = self.rcpt("mallory@listed.example")
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith("5.1.1"), text)
        self.assertEqual(self.rcpt("anyone@open.example")[0], 250)

    def test_recipient_import_and_removal_take_effect(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("# staff\ncarol@listed.example\n\ndave@listed.example\n")
        try:
            self.d.console("recipient", "import", f.name, "--domain", "listed.example")
        finally:
            os.unlink(f.name)
        self.assertEqual(self.rcpt("carol@listed.example")[0], 250)
        self.d.console("recipient", "remove", "carol@listed.example")
        self.assertEqual(self.rcpt("carol@listed.example")[0], 550)
        listed = [json.loads(l)["address"] for l in
                  self.d.console("recipient", "list", "--domain", "listed.example", "--json").stdout.splitlines()]
        self.assertIn("dave@listed.example", listed)
        self.assertNotIn("carol@listed.example", listed)

    def test_import_refuses_bad_files_whole(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("erin@listed.example\nnot an address\nerin@listed.example\n")
        try:
            p = self.d.console("recipient", "import", f.name, "--domain", "listed.example", check=False)
        finally:
            os.unlink(f.name)
        self.assertEqual(p.returncode, 2)
        self.assertIn("line 2", p.stderr)
        self.assertIn("line 3: duplicate", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)
        self.assertEqual(self.rcpt("erin@listed.example")[0], 550)  # nothing was imported

    def test_smtputf8_recipient_in_unicode_domain_finds_its_a_label(self):
        self.d.console("domain", "add", "bücher.example", "--customer", "acme", "--backend", "127.0.0.1:2",
                       "--active")
        r = Raw(self.d.port)
        r.expect(220)
        r.line("EHLO client.example")
        r.expect(250)
        r.send("MAIL FROM:<s@client.example> SMTPUTF8\r\n".encode())
        r.expect(250)
        r.send("RCPT TO:<anna@bücher.example>\r\n".encode())
        r.expect(250)
        r.send("RCPT TO:<anna@bücherei.example>\r\n".encode())
        self.assertIn("5.7.1", r.expect(550))
        r.close()

    def test_suspended_domain_defers(self):
        self.d.console("domain", "suspend", "other.example")
        try:
            code, text = self.rcpt("u@other.example")
            self.assertEqual(code, 450)
            self.assertTrue(text.startswith("4.7.1"), text)
        finally:
            self.d.console("domain", "resume", "other.example")
        self.assertEqual(self.rcpt("u@other.example")[0], 250)

    def test_setting_changed_while_running_applies_to_next_transaction(self):
        with smtplib.SMTP("127.0.0.1", self.d.port, local_hostname="client.example", timeout=10) as s:
            s.ehlo()
            s.mail("s@client.example")
            self.assertEqual(s.rcpt("zed@open.example")[0], 250)
            s.rset()
            # No recipients defined: every one is refused, a risk taken on purpose.
            self.d.console("domain", "set", "open.example", "recipients=list", "--force")
            try:
                s.mail("s@client.example")
                self.assertEqual(s.rcpt("zed@open.example")[0], 550)
            finally:
                self.d.console("domain", "set", "open.example", "recipients=accept-all")
            s.rset()
            s.mail("s@client.example")
            self.assertEqual(s.rcpt("zed@open.example")[0], 250)

    def test_global_sender_block_refuses_mail_from(self):
        self.d.console("list", "block", "add", "sender-domain", "spam.example")
        try:
            code, text = self.rcpt("u@open.example", sender="x@mail.spam.example")
            self.assertEqual(code, 550)
            self.assertTrue(text.startswith("5.7.1"), text)
            self.assertEqual(self.rcpt("u@open.example", sender="x@notspam.example")[0], 250)
        finally:
            self.d.console("list", "block", "remove", "sender-domain", "spam.example")
        self.assertEqual(self.rcpt("u@open.example", sender="x@mail.spam.example")[0], 250)

    def test_domain_sender_block_only_for_that_domain(self):
        self.d.console("list", "block", "add", "sender", "Rival@Competitor.example", "--domain", "open.example")
        try:
            self.assertEqual(self.rcpt("u@open.example", sender="rival@competitor.example")[0], 550)
            self.assertEqual(self.rcpt("u@other.example", sender="rival@competitor.example")[0], 250)
        finally:
            self.d.console("list", "block", "remove", "sender", "rival@competitor.example", "--domain", "open.example")

    def test_global_ip_block_refuses_at_connect(self):
        self.d.console("list", "block", "add", "ip", "127.0.0.77/32")
        try:
            r = Raw(self.d.port, source="127.0.0.77")
            code, text = r.reply()
            self.assertEqual(code, 554)
            self.assertIn("Access denied", text)
            self.assertTrue(r.closed())
            ok = Raw(self.d.port, source="127.0.0.78")
            ok.expect(220)
            ok.close()
        finally:
            self.d.console("list", "block", "remove", "ip", "127.0.0.77")

    def test_domain_ip_block_and_allow_override(self):
        self.d.console("list", "block", "add", "ip", "127.0.0.80/30", "--domain", "open.example")
        try:
            self.assertEqual(self.rcpt("u@open.example", source="127.0.0.81")[0], 550)
            self.assertEqual(self.rcpt("u@other.example", source="127.0.0.81")[0], 250)
        finally:
            self.d.console("list", "block", "remove", "ip", "127.0.0.80/30", "--domain", "open.example")
        # A domain's allow list beats a global block (the most specific list wins).
        self.d.console("list", "block", "add", "sender-domain", "partner.example")
        self.d.console("list", "allow", "add", "sender-domain", "partner.example", "--domain", "open.example")
        try:
            # The global block refuses at MAIL FROM already, before any domain is known.
            self.assertEqual(self.rcpt("u@open.example", sender="a@partner.example")[0], 550)
        finally:
            self.d.console("list", "block", "remove", "sender-domain", "partner.example")
        code, _ = self.rcpt("u@open.example", sender="a@partner.example")
        self.assertEqual(code, 250)
        shown = [json.loads(l) for l in self.d.console("list", "allow", "show", "--domain", "open.example",
                                                        "--json").stdout.splitlines()]
        self.assertEqual([(e["kind"], e["value"]) for e in shown], [("sender-domain", "partner.example")])
        self.d.console("list", "allow", "remove", "sender-domain", "partner.example", "--domain", "open.example")

    def test_allowlisted_message_is_marked_in_queue(self):
        self.d.console("list", "allow", "add", "sender", "boss@client.example", "--domain", "open.example")
        try:
            with smtplib.SMTP("127.0.0.1", self.d.port, local_hostname="client.example", timeout=10) as s:
                s.ehlo()
                s.mail("boss@client.example")
                s.rcpt("team@open.example")
                code, resp = s.data(b"Subject: allowed\r\n\r\nhi\r\n")
                self.assertEqual(code, 250)
                qid = resp.decode().rsplit(" ", 1)[1]
        finally:
            self.d.console("list", "allow", "remove", "sender", "boss@client.example", "--domain", "open.example")
        shown = json.loads(self.d.console("queue", "show", qid, "--json").stdout)
        self.assertEqual(shown.get("allowlisted"), ["team@open.example"])

    def test_console_refuses_bad_input_and_writes_nothing(self):
        for args in (["domain", "set", "open.example", "reject_threshold=3", "quarantine_threshold=5"],
                     ["domain", "set", "open.example", "tls=sometimes"],
                     ["domain", "set", "open.example", "colour=blue"],
                     ["domain", "set", "open.example", "backend=host:99999"],
                     ["domain", "set", "nosuch.example", "tls=may"],
                     ["list", "block", "add", "ip", "300.1.1.1"],
                     ["list", "block", "add", "sender", "no-at-sign"],
                     ["list", "allow", "add", "color", "x"],
                     ["list", "block", "add", "ip", "192.0.2.1", "--domain", "nosuch.example"],
                     ["recipient", "add", "x@nosuch.example"]):
            p = self.d.console(*args, check=False)
            self.assertEqual(p.returncode, 2, args)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
            self.assertTrue(p.stderr.startswith("mxguard: "), p.stderr)
        shown = json.loads(self.d.console("domain", "show", "open.example", "--json").stdout)
        self.assertEqual(shown["backend"]["tls"], "may")
        self.assertEqual(self.d.console("list", "block", "show", "--json").stdout, "")


if __name__ == "__main__":
    unittest.main(verbosity=2)
