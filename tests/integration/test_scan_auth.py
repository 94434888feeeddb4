#!/usr/bin/env python3
"""SPF, DKIM and DMARC through the real daemon: knotd serves the sender
domains' records on a loopback port, mxguardd asks it (dns.servers), and each
message is sent over SMTP and read back from the spool (`queue show --raw`)
and the live feed. Also checks that a client's header fields claiming to be
ours (Authentication-Results for our host name, X-MxGuard-*) do not survive.

Signing uses dkimpy (Debian package python3-dkim) and an RSA key made with
openssl for this run; without dkimpy the DKIM cases are skipped.

Run: MXGUARDD_BIN=build/src/engine/mxguardd MXGUARD_BIN=build/src/console/mxguard \
     /usr/bin/python3 tests/integration/test_scan_auth.py
"""
import base64
import json
import os
import re
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from knot import KNOTD, Knot  # noqa: E402
from mxg import Daemon, free_port  # noqa: E402

try:
    import dkim
except ImportError:  # python3-dkim not installed
    dkim = None

HOST = "mx.test.local"  # the hostname mxg.Daemon configures: our authserv-id


def make_rsa_key(directory):
    """(private key PEM, public key as the DKIM p= value)."""
    key = os.path.join(directory, "dkim.pem")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    with open(key, "rb") as f:
        return f.read(), base64.b64encode(der).decode()


def txt(owner, text):
    """A zone line for a TXT record, split into strings of at most 255 bytes."""
    parts = [text[i:i + 200] for i in range(0, len(text), 200)]
    return "%s TXT %s" % (owner, " ".join('"%s"' % p for p in parts))


def message(sender, subject, extra_headers="", body="Hello,\r\n\r\nthe figures are attached.\r\n\r\nAlice\r\n"):
    return ("From: Alice <%s>\r\nTo: bob@example.com\r\nSubject: %s\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
            "Message-ID: <%s.%d@test>\r\n%s\r\n%s") % (sender, subject, subject.replace(" ", "-"),
                                                       int(time.time() * 1000), extra_headers, body)


@unittest.skipUnless(os.path.exists(KNOTD), "knotd is not installed (Debian package knot)")
class ScanAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="mxg-scan-auth-")
        cls.private_key, public_key = make_rsa_key(cls.tmp.name)
        zones = {
            # SPF pass for 127.0.0.1, a DKIM key, DMARC p=reject (passes when aligned).
            "signed.test": [
                'spf TXT "v=spf1 ip4:127.0.0.1 -all"',
                '@ TXT "v=spf1 ip4:127.0.0.1 -all"',
                txt("sel._domainkey", "v=DKIM1; k=rsa; p=" + public_key),
                '_dmarc TXT "v=DMARC1; p=reject"',
                "client A 127.0.0.1",
            ],
            # SPF that does not allow 127.0.0.1; no DMARC record.
            "spf-fail.test": ['@ TXT "v=spf1 ip4:192.0.2.1 -all"'],
            # SPF fails, no signature, and the domain asks receivers to reject.
            "dm-reject.test": ['@ TXT "v=spf1 ip4:192.0.2.1 -all"', '_dmarc TXT "v=DMARC1; p=reject"'],
            # The same, with the policy applied to half of the failing messages.
            "dm-pct.test": ['@ TXT "v=spf1 ip4:192.0.2.1 -all"', '_dmarc TXT "v=DMARC1; p=reject; pct=50"'],
            # Two DMARC records: no policy at all (RFC 7489 6.6.3).
            "dm-two.test": ['@ TXT "v=spf1 ip4:192.0.2.1 -all"', '_dmarc TXT "v=DMARC1; p=reject"',
                            '_dmarc TXT "v=DMARC1; p=none"'],
        }
        os.mkdir(os.path.join(cls.tmp.name, "knot"))
        cls.knot = Knot(os.path.join(cls.tmp.name, "knot"), zones)
        # Thresholds out of reach (verdicts=False): every message is stored, so
        # its headers can be read back.
        cls.d = Daemon(top_extra='[dns]\nservers = ["127.0.0.1:%d"]\ntimeout = "2s"\n' % cls.knot.port)
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.cleanup()
        cls.knot.stop()
        cls.tmp.cleanup()

    def send(self, data, sender):
        """The queue id of the accepted message."""
        if isinstance(data, str):
            data = data.encode()
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
            s.ehlo("client.signed.test")
            s.mail(sender)
            s.rcpt("bob@example.com")
            code, text = s.data(data)
        self.assertEqual(code, 250, text)
        m = re.search(rb"queued as (\S+)", text)
        self.assertIsNotNone(m, text)
        return m.group(1).decode()

    def stored(self, qid):
        """The stored message's header section (unfolded lines) and bytes."""
        raw = self.d.console_bytes("queue", "show", qid, "--raw")
        head = raw.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
        return re.sub(r"\r\n[ \t]+", " ", head).split("\r\n"), raw

    def reasons(self, qid, timeout=10):
        """{rule: score} of the message's feed entry."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            out = self.d.console("feed", "--json", "-n", "1000").stdout
            for line in out.splitlines():
                e = json.loads(line)
                if e["id"] == qid:
                    return {r["rule"]: r["score"] for r in e["reasons"]}
            time.sleep(0.1)
        self.fail("no feed entry for %s" % qid)

    def our_results(self, lines):
        """The Authentication-Results fields with our authserv-id."""
        return [l for l in lines if l.lower().startswith("authentication-results: %s;" % HOST)]

    def sign(self, msg):
        sig = dkim.sign(msg.encode(), b"sel", b"signed.test", self.private_key,
                        canonicalize=(b"relaxed", b"relaxed"),
                        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
        return sig + msg.encode()

    @unittest.skipIf(dkim is None, "dkimpy is not installed (Debian package python3-dkim)")
    def test_dkim_signed_message_passes(self):
        qid = self.send(self.sign(message("alice@signed.test", "signed report")), "alice@signed.test")
        lines, _ = self.stored(qid)
        ours = self.our_results(lines)
        self.assertEqual(len(ours), 1, lines)
        self.assertIn("dkim=pass header.d=signed.test header.s=sel", ours[0])
        self.assertIn("spf=pass smtp.mailfrom=signed.test", ours[0])
        self.assertIn("dmarc=pass header.from=signed.test", ours[0])
        reasons = self.reasons(qid)
        self.assertIn("DKIM_VALID", reasons)
        self.assertIn("DKIM_ALIGNED", reasons)
        self.assertNotIn("DKIM_INVALID", reasons)
        self.assertNotIn("SPF_FAIL", reasons)

    @unittest.skipIf(dkim is None, "dkimpy is not installed (Debian package python3-dkim)")
    def test_altered_body_fails_dkim(self):
        signed = self.sign(message("alice@signed.test", "altered report"))
        altered = signed.replace(b"the figures are attached", b"the figures are changed!")
        self.assertNotEqual(signed, altered)
        qid = self.send(altered, "alice@signed.test")
        lines, _ = self.stored(qid)
        ours = self.our_results(lines)
        self.assertEqual(len(ours), 1, lines)
        self.assertIn("dkim=fail header.d=signed.test", ours[0])
        reasons = self.reasons(qid)
        self.assertEqual(reasons.get("DKIM_INVALID"), 1.0, reasons)
        self.assertNotIn("DKIM_VALID", reasons)

    def test_spf_pass_for_the_connecting_address(self):
        qid = self.send(message("alice@signed.test", "plain note"), "alice@signed.test")
        lines, _ = self.stored(qid)
        ours = self.our_results(lines)
        self.assertEqual(len(ours), 1, lines)
        self.assertIn("spf=pass smtp.mailfrom=signed.test", ours[0])
        self.assertIn("dkim=none", ours[0])
        reasons = self.reasons(qid)
        self.assertIn("SPF_PASS", reasons)
        self.assertNotIn("SPF_FAIL", reasons)

    def test_spf_fail_gives_its_reason_and_score(self):
        qid = self.send(message("carol@spf-fail.test", "spf failure"), "carol@spf-fail.test")
        lines, _ = self.stored(qid)
        ours = self.our_results(lines)
        self.assertEqual(len(ours), 1, lines)
        self.assertIn("spf=fail smtp.mailfrom=spf-fail.test", ours[0])
        reasons = self.reasons(qid)
        self.assertEqual(reasons.get("SPF_FAIL"), 2.0, reasons)
        self.assertNotIn("SPF_PASS", reasons)

    def test_dmarc_reject_policy_failure(self):
        qid = self.send(message("ceo@dm-reject.test", "wire transfer"), "ceo@dm-reject.test")
        lines, _ = self.stored(qid)
        ours = self.our_results(lines)
        self.assertEqual(len(ours), 1, lines)
        self.assertIn("dmarc=fail header.from=dm-reject.test", ours[0])
        reasons = self.reasons(qid)
        self.assertEqual(reasons.get("DMARC_FAIL_REJECT"), 6.0, reasons)
        self.assertIn("SPF_FAIL", reasons)
        score = [l for l in lines if l.startswith("X-MxGuard-Score: ")]
        self.assertEqual(len(score), 1, lines)
        self.assertGreaterEqual(float(score[0].split()[1]), 8.0)

    def score(self, lines):
        found = [l for l in lines if l.startswith("X-MxGuard-Score: ")]
        self.assertEqual(len(found), 1, lines)
        return float(found[0].split()[1])

    def test_malformed_dkim_signatures_are_permerror(self):
        """A message whose every DKIM-Signature fails to parse has no key to
        look up; it is still signed, so dkim=permerror (RFC 8601 reserves
        none for unsigned mail) and it scores as an invalid signature."""
        tail = "; d=signed.test; s=sel; bh=AAAA; b=AAAA"
        cases = {
            "rsa-sha1": "v=1; a=rsa-sha1; h=from:to" + tail,
            "from-unsigned": "v=1; a=rsa-sha256; h=to:subject" + tail,
            "unknown-a": "v=1; a=rsa-sha512; h=from" + tail,
            "duplicate-tag": "v=1; a=rsa-sha256; h=from; h=to" + tail,
            "v2": "v=2; a=rsa-sha256; h=from" + tail,
            "x-before-t": "v=1; a=rsa-sha256; h=from; t=1700000000; x=1600000000" + tail,
        }
        for name, sig in cases.items():
            with self.subTest(name):
                qid = self.send("DKIM-Signature: %s\r\n%s" % (sig, message("alice@signed.test", "broken " + name)),
                                "alice@signed.test")
                lines, _ = self.stored(qid)
                ours = self.our_results(lines)
                self.assertEqual(len(ours), 1, lines)
                # A tag list that does not parse names no signer.
                self.assertIn("dkim=permerror" if name == "duplicate-tag" else
                              "dkim=permerror header.d=signed.test header.s=sel", ours[0])
                self.assertNotIn("dkim=none", ours[0])
                reasons = self.reasons(qid)
                self.assertEqual(reasons.get("DKIM_INVALID"), 1.0, reasons)
                self.assertNotIn("DKIM_NONE", reasons)

    def test_dmarc_pct_samples_by_message_id(self):
        """pct=50: about half of the failing messages get the policy, the
        others the next lower one; the Message-ID decides, so the same
        message sent again gets the same answer."""
        def send_one(i):
            data = ("From: CEO <ceo@dm-pct.test>\r\nTo: bob@example.com\r\nSubject: pct %d\r\n"
                    "Message-ID: <pct-%d@dm-pct.test>\r\n\r\nPay the invoice.\r\n") % (i, i)
            reasons = self.reasons(self.send(data, "ceo@dm-pct.test"))
            policies = [r for r in ("DMARC_FAIL_REJECT", "DMARC_FAIL_QUARANTINE") if r in reasons]
            self.assertEqual(len(policies), 1, reasons)
            return policies[0]
        got = [send_one(i) for i in range(20)]
        rejected = got.count("DMARC_FAIL_REJECT")
        self.assertGreaterEqual(rejected, 4, got)
        self.assertLessEqual(rejected, 16, got)
        self.assertEqual([send_one(i) for i in range(3)], got[:3])

    @unittest.skipIf(dkim is None, "dkimpy is not installed (Debian package python3-dkim)")
    def test_two_from_fields_fail_dmarc(self):
        """A From field prepended to a message signed for signed.test (p=reject):
        the signature still verifies (it covers the last From), but RFC 5322
        allows one From, so DMARC fails whatever the signature says."""
        signed = self.sign(message("alice@signed.test", "two authors"))
        qid = self.send(b"From: CEO <ceo@signed.test>\r\n" + signed, "alice@signed.test")
        lines, _ = self.stored(qid)
        ours = self.our_results(lines)
        self.assertEqual(len(ours), 1, lines)
        self.assertIn("dkim=pass header.d=signed.test", ours[0])
        self.assertIn("dmarc=fail header.from=signed.test", ours[0])
        reasons = self.reasons(qid)
        self.assertEqual(reasons.get("DMARC_FAIL_REJECT"), 6.0, reasons)
        self.assertEqual(reasons.get("FROM_MULTIPLE"), 3.0, reasons)
        self.assertNotIn("DMARC_PASS", reasons)
        self.assertNotIn("DKIM_ALIGNED", reasons)
        self.assertGreaterEqual(self.score(lines), 8.0)
        # The same message with its one From passes as before.
        qid = self.send(signed, "alice@signed.test")
        lines, _ = self.stored(qid)
        self.assertIn("dmarc=pass header.from=signed.test", self.our_results(lines)[0])
        self.assertNotIn("FROM_MULTIPLE", self.reasons(qid))

    def test_two_dmarc_records_are_no_policy(self):
        qid = self.send(message("ceo@dm-two.test", "two records"), "ceo@dm-two.test")
        lines, _ = self.stored(qid)
        ours = self.our_results(lines)
        self.assertEqual(len(ours), 1, lines)
        self.assertIn("dmarc=none header.from=dm-two.test", ours[0])
        reasons = self.reasons(qid)
        self.assertIn("DMARC_NONE", reasons)
        self.assertFalse([r for r in reasons if r.startswith("DMARC_FAIL")], reasons)

    def test_forged_results_and_score_headers_are_removed(self):
        forged = ("Authentication-Results: %s; dkim=pass header.d=bank.test; spf=pass\r\n"
                  "authentication-results: (forged)\r\n %s.; dmarc=pass\r\n"
                  "Authentication-Results: relay.other.test; spf=pass smtp.mailfrom=spf-fail.test\r\n"
                  "X-MxGuard-Score: -99.00 deliver\r\n"
                  "X-MXGUARD-Verdict: clean\r\n") % (HOST, HOST.upper())
        qid = self.send(message("carol@spf-fail.test", "forged results", extra_headers=forged),
                        "carol@spf-fail.test")
        lines, raw = self.stored(qid)
        ours = self.our_results(lines)
        self.assertEqual(len(ours), 1, lines)
        self.assertIn("spf=fail", ours[0])
        self.assertNotIn(b"bank.test", raw)
        self.assertNotIn(b"(forged)", raw)
        self.assertNotIn(b"-99.00", raw)
        self.assertNotIn(b"X-MXGUARD-Verdict", raw)
        # Another host's results are the client's business and stay.
        self.assertIn("Authentication-Results: relay.other.test; spf=pass smtp.mailfrom=spf-fail.test", lines)
        self.assertEqual(len([l for l in lines if l.lower().startswith("x-mxguard-")]), 1, lines)
        # The rest of the message is as sent: our fields first, then the client's.
        self.assertTrue(raw.endswith(b"Hello,\r\n\r\nthe figures are attached.\r\n\r\nAlice\r\n"))
        self.assertIn(b"\r\nFrom: Alice <carol@spf-fail.test>\r\n", raw)

    def test_network_checks_off(self):
        """scan.network_checks = false: no SPF, DKIM, DMARC, DNSBL or HELO
        lookups at all, so a message that fails SPF against the same zones is
        neither marked nor scored for it; and with a DNS server that never
        answers, no message waits for one (each would otherwise wait for the
        2 s timeout). The resolver is still there for delivery."""
        for servers, name in (([self.knot.port], "knotd"), ([free_port()], "a silent server")):
            d = Daemon(top_extra='[dns]\nservers = ["127.0.0.1:%d"]\ntimeout = "2s"\n[scan]\nnetwork_checks = false\n'
                       % servers[0])
            try:
                d.start()
                saved, self.d = self.d, d
                try:
                    for i in range(3):
                        start = time.monotonic()
                        qid = self.send(message("carol@spf-fail.test", "unchecked %d" % i), "carol@spf-fail.test")
                        took = time.monotonic() - start
                        self.assertLess(took, 1.5, "%s: message %d took %.2f s" % (name, i, took))
                        lines, _ = self.stored(qid)
                        # RFC 8601: "none", no method was applied.
                        self.assertEqual(self.our_results(lines), ["Authentication-Results: %s; none" % HOST], lines)
                        reasons = self.reasons(qid)
                        self.assertFalse([r for r in reasons if r.startswith(("SPF_", "DKIM_", "DMARC_", "HELO_"))],
                                         reasons)
                finally:
                    self.d = saved
            finally:
                d.stop()
                d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
