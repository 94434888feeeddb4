"""Standards items of the outside review, against the real mxguardd: NUL in
DATA and BDAT is refused (a backend that drops NULs would see another end
of data), postmaster is accepted as RFC 5321 4.5.1 requires, and
subaddresses (bob+news@) find their base address in list and callout mode."""
import json
import os
import smtplib
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mxg import Daemon, Raw, free_port  # noqa: E402

from aiosmtpd.controller import Controller  # noqa: E402


def rcpt(port, address, sender="s@client.example"):
    """(code, text) of RCPT TO in a fresh session."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=30) as s:
        s.ehlo()
        code, text = s.mail(sender)
        if code != 250:
            return code, text.decode()
        code, text = s.rcpt(address)
        return code, text.decode()


def send_raw(port, rcpt_line, body=b"Subject: pm\r\n\r\nhello\r\n"):
    """Sends one message with the RCPT line exactly as given; returns the
    queue id from the 250 after DATA."""
    r = Raw(port)
    try:
        r.expect(220)
        r.line("EHLO client.example")
        r.expect(250)
        r.line("MAIL FROM:<s@client.example>")
        r.expect(250)
        r.line(rcpt_line)
        r.expect(250)
        r.line("DATA")
        r.expect(354)
        r.send(body + b".\r\n")
        text = r.expect(250)
        r.line("QUIT")
        return text.split()[-1]
    finally:
        r.close()


def queued_recipients(d, qid):
    entries = {e["id"]: e for e in d.queue()}
    if qid not in entries:
        raise AssertionError("%s not in the queue: %r" % (qid, entries))
    return entries[qid]["recipients"]


class Nul(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(domains=("example.com",))
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        cls.d.cleanup()
        assert code == 0

    def session(self):
        r = Raw(self.d.port)
        r.expect(220)
        r.line("EHLO client.example")
        ehlo = r.expect(250)
        self.assertIn("CHUNKING", ehlo)
        self.assertNotIn("BINARYMIME", ehlo)
        return r

    def transaction(self, r):
        r.line("MAIL FROM:<s@client.example>")
        r.expect(250)
        r.line("RCPT TO:<bob@example.com>")
        r.expect(250)

    def test_nul_refused_in_data_and_bdat_and_the_session_goes_on(self):
        before = len(self.d.queue())
        r = self.session()
        try:
            # The smuggling shape: "<CRLF><NUL>.<CRLF>" is an end of data to a
            # backend that drops NULs first; what follows would be a second message.
            self.transaction(r)
            r.line("DATA")
            r.expect(354)
            r.send(b"Subject: nul\r\n\r\nbody\r\n\x00.\r\nMAIL FROM:<evil@client.example>\r\n"
                   b"RCPT TO:<victim@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n")
            text = r.expect(550)
            self.assertIn("5.6.0", text)
            self.assertIn("NUL", text)
            self.transaction(r)
            r.send(b"BDAT 9 LAST\r\nab\x00\r\n.\r\nx")
            text = r.expect(550)
            self.assertIn("5.6.0", text)
            # The same session still delivers a clean message, 8-bit and all.
            self.transaction(r)
            body = "Subject: 8bit\r\n\r\ncaf\u00e9 \u00fc\r\n".encode()
            r.send(b"BDAT %d LAST\r\n" % len(body) + body)
            qid = r.expect(250).split()[-1]
            r.line("QUIT")
            r.expect(221)
        finally:
            r.close()
        queue = self.d.queue()
        self.assertEqual(len(queue), before + 1, queue)
        self.assertEqual([e["id"] for e in queue if e["id"] == qid], [qid])
        self.assertNotIn("smuggled", [e.get("subject") for e in queue])
        self.assertNotIn("nul", [e.get("subject") for e in queue])


class Postmaster(unittest.TestCase):
    """Without smtp.postmaster the bare <postmaster> goes to the oldest active
    domain: zeta.example was added first, pending.example is not active."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(domains=())
        cls.d.console("domain", "add", "pending.example", "--customer", "acme", "--backend", "127.0.0.1:2")
        for name in ("zeta.example", "alpha.example", "listed.example"):
            cls.d.console("domain", "add", name, "--customer", "acme", "--backend", "127.0.0.1:2", "--active")
            cls.d.console("domain", "set", name, "reject_threshold=100", "quarantine_threshold=100",
                          "greylist_threshold=100")
        cls.d.console("recipient", "add", "bob@listed.example")
        cls.d.console("domain", "set", "listed.example", "recipients=list")
        # zeta.example knows no recipients on purpose (only postmaster is accepted).
        cls.d.console("domain", "set", "zeta.example", "recipients=list", "--force")
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        cls.d.cleanup()
        assert code == 0

    def test_bare_postmaster_any_case_is_queued_to_the_oldest_active_domain(self):
        for line in ("RCPT TO:<postmaster>", "RCPT TO:<Postmaster>", "RCPT TO:<POSTMASTER>"):
            qid = send_raw(self.d.port, line)
            self.assertEqual(queued_recipients(self.d, qid), ["postmaster@zeta.example"], line)

    def test_postmaster_at_a_list_domain_with_no_listed_recipients(self):
        code, text = rcpt(self.d.port, "postmaster@zeta.example")
        self.assertEqual(code, 250, text)
        code, text = rcpt(self.d.port, "PostMaster@listed.example")
        self.assertEqual(code, 250, text)
        code, text = rcpt(self.d.port, "nobody@zeta.example")
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith("5.1.1"), text)

    def test_postmaster_of_a_domain_not_ours_is_still_relay_denied(self):
        for address in ("postmaster@notours.test", "postmaster@pending.example"):
            code, text = rcpt(self.d.port, address)
            self.assertEqual(code, 550, text)
            self.assertTrue(text.startswith("5.7.1"), text)

    def test_recipient_delimiter(self):
        code, text = rcpt(self.d.port, "bob+news@listed.example")
        self.assertEqual(code, 250, text)
        code, text = rcpt(self.d.port, "alice+x@listed.example")
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith("5.1.1"), text)
        # Delivered to the address as given, not to its base.
        qid = send_raw(self.d.port, "RCPT TO:<bob+news@listed.example>")
        self.assertEqual(queued_recipients(self.d, qid), ["bob+news@listed.example"])
        try:
            self.d.console("domain", "set", "listed.example", "recipient_delimiter=")
            code, text = rcpt(self.d.port, "bob+news@listed.example")
            self.assertEqual(code, 550, text)
            self.assertTrue(text.startswith("5.1.1"), text)
            self.d.console("domain", "set", "listed.example", "recipient_delimiter=-+")
            self.assertEqual(rcpt(self.d.port, "bob-news@listed.example")[0], 250)
            self.assertEqual(rcpt(self.d.port, "bob+news@listed.example")[0], 250)
        finally:
            self.d.console("domain", "set", "listed.example", "recipient_delimiter=+")

    def test_recipient_delimiter_setting_is_checked_and_shown(self):
        shown = json.loads(self.d.console("domain", "show", "alpha.example", "--json").stdout)
        self.assertEqual(shown["recipient_delimiter"], "+")
        for bad in ("a", "@", "+ ", "+++++", "\u00e9"):
            p = self.d.console("domain", "set", "alpha.example", "recipient_delimiter=" + bad, check=False)
            self.assertEqual(p.returncode, 2, bad)
            self.assertIn("recipient_delimiter", p.stderr)
        self.d.console("domain", "set", "alpha.example", "recipient_delimiter=")
        shown = json.loads(self.d.console("domain", "show", "alpha.example", "--json").stdout)
        self.assertEqual(shown["recipient_delimiter"], "")
        self.d.console("domain", "set", "alpha.example", "recipient_delimiter=+")


class PostmasterSetting(unittest.TestCase):
    """smtp.postmaster names the address the bare <postmaster> goes to."""

    def test_configured_address(self):
        d = Daemon(domains=("first.example", "ops.example"), smtp_extra='postmaster = "hostmaster@ops.example"')
        try:
            d.start()
            qid = send_raw(d.port, "RCPT TO:<postmaster>")
            self.assertEqual(queued_recipients(d, qid), ["hostmaster@ops.example"])
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()

    def test_no_active_domain_and_no_setting(self):
        d = Daemon(domains=())
        try:
            d.console("domain", "add", "pending.example", "--customer", "acme", "--backend", "127.0.0.1:2")
            d.start()
            code, text = rcpt(d.port, "postmaster")
            self.assertEqual(code, 550, text)
            self.assertTrue(text.startswith("5.1.1"), text)
            self.assertIn("postmaster", text.lower())
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()


class Recorder:
    """aiosmtpd handler that knows bob@ only, and counts what it was asked."""

    def __init__(self):
        self.asked = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.asked.append(address)
        if address.split("@")[0].lower() != "bob":
            return "550 5.1.1 <%s>: no such user here" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


class Callout(unittest.TestCase):
    def test_callout_asks_for_the_base_address_and_never_for_postmaster(self):
        rec = Recorder()
        port = free_port()
        ctl = Controller(rec, hostname="127.0.0.1", port=port)
        ctl.start()
        d = Daemon(domains=())
        try:
            d.console("domain", "add", "co.example", "--customer", "acme", "--backend", "127.0.0.1:%d" % port,
                      "--active", "--tls", "none", "--recipients", "callout")
            d.start()
            code, text = rcpt(d.port, "bob+news@co.example")
            self.assertEqual(code, 250, text)
            code, text = rcpt(d.port, "carol+x@co.example")
            self.assertEqual(code, 550, text)
            code, text = rcpt(d.port, "postmaster@co.example")
            self.assertEqual(code, 250, text)
            deadline = time.time() + 5
            while time.time() < deadline and len(rec.asked) < 2:
                time.sleep(0.05)
            with rec.lock:
                self.assertEqual(sorted(rec.asked), ["bob@co.example", "carol@co.example"])
            self.assertEqual(d.stop(), 0)
        finally:
            d.cleanup()
            ctl.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
