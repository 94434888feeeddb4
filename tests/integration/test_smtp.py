"""SMTP receiving against the real mxguardd: dialogues with smtplib, swaks and
raw sockets, STARTTLS with a test certificate, and every session limit."""
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mxg import Daemon, Raw, strip_received  # noqa: E402

MSG = (b"From: Alice <alice@client.example>\r\nTo: bob@example.com\r\nSubject: integration\r\n"
       b"Message-ID: <it-1@client.example>\r\n\r\nHello Bob.\r\n.leading dot line\r\n")


class Receive(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(tls=True, domains=("example.com", "example.net"),
                       smtp_extra="max_message_size = 200000\nmax_connections_per_ip = 6\n")
        cls.d.console("domain", "add", "pending.example", "--customer", "acme", "--backend", "127.0.0.1:2")
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        log = cls.d.read_log()
        cls.d.cleanup()
        assert code == 0, "mxguardd exit %s\n%s" % (code, log)

    def smtp(self):
        return smtplib.SMTP("127.0.0.1", self.d.port, local_hostname="client.example", timeout=10)

    def stored(self, qid):
        return self.d.console_bytes("queue", "show", qid, "--raw")

    def test_ehlo_keywords(self):
        with self.smtp() as s:
            code, _ = s.ehlo()
            self.assertEqual(code, 250)
            for kw in ("pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes", "chunking", "starttls"):
                self.assertTrue(s.has_extn(kw), kw)
            self.assertEqual(s.esmtp_features["size"], "200000")

    def test_transaction_is_stored_byte_identical(self):
        with self.smtp() as s:
            s.ehlo()
            s.mail("alice@client.example")
            s.rcpt("bob@example.com")
            code, resp = s.data(MSG)
            self.assertEqual(code, 250, resp)
            qid = resp.decode().rsplit(" ", 1)[1]
        entries = {e["id"]: e for e in self.d.queue()}
        self.assertIn(qid, entries)
        e = entries[qid]
        self.assertEqual(e["sender"], "alice@client.example")
        self.assertEqual(e["recipients"], ["bob@example.com"])
        self.assertEqual(e["subject"], "integration")
        self.assertEqual(e["message_id"], "<it-1@client.example>")
        header, body = strip_received(self.stored(qid))
        self.assertEqual(body, MSG)
        self.assertIn(b"by mx.test.local (MxGuard) with ESMTP id " + qid.encode(), header)
        self.assertIn(b"for <bob@example.com>", header)
        self.assertEqual(e["size"], len(header) + len(body))

    def test_several_transactions_and_rset(self):
        with self.smtp() as s:
            s.ehlo()
            ids = []
            for i in range(3):
                s.mail("a@client.example")
                s.rcpt("r%d@example.com" % i)
                if i == 1:
                    self.assertEqual(s.rset()[0], 250)
                    continue
                code, resp = s.data(b"Subject: n%d\r\n\r\nx\r\n" % i)
                self.assertEqual(code, 250)
                ids.append(resp.decode().rsplit(" ", 1)[1])
            code, _ = s.rcpt("x@example.com")
            self.assertEqual(code, 503)
        self.assertEqual(len(set(ids)), 2)
        queued = {e["id"] for e in self.d.queue()}
        self.assertTrue(set(ids) <= queued)

    def test_pipelined_commands(self):
        r = Raw(self.d.port)
        r.expect(220)
        r.send(b"EHLO client.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<p1@example.com>\r\n"
               b"RCPT TO:<p2@nowhere.example>\r\nRCPT TO:<p3@example.net>\r\nDATA\r\n")
        r.expect(250)
        r.expect(250)
        r.expect(250)
        self.assertIn("5.7.1", r.expect(550))
        r.expect(250)
        r.expect(354)
        r.send(b"Subject: piped\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@client.example>\r\nRCPT TO:<q@example.com>\r\n"
               b"DATA\r\n")
        text = r.expect(250)
        self.assertIn("queued as", text)
        r.expect(250)
        r.expect(250)
        r.expect(354)
        r.send(b"second\r\n.\r\nQUIT\r\n")
        r.expect(250)
        r.expect(221)
        self.assertTrue(r.closed())

    def test_unknown_and_pending_domains_refused(self):
        with self.smtp() as s:
            s.ehlo()
            s.mail("a@client.example")
            for rcpt in ("u@unknown.example", "u@pending.example", "u@sub.example.com"):
                code, resp = s.rcpt(rcpt)
                self.assertEqual(code, 550, rcpt)
                self.assertTrue(resp.startswith(b"5.7.1"), resp)

    def test_relay_tricks_refused(self):
        r = Raw(self.d.port)
        r.expect(220)
        r.line("EHLO client.example")
        r.expect(250)
        r.line("MAIL FROM:<a@client.example>")
        r.expect(250)
        for trick in ("<u%other.example@example.com>", "<other.example!u@example.com>",
                      "<@relay.example:u@example.com>", '<"u@other.example"@example.com>', "<u@[127.0.0.1]>"):
            r.line("RCPT TO:" + trick)
            self.assertIn("5.7.1", r.expect(550), trick)
        r.close()

    def test_domain_change_seen_without_restart(self):
        with self.smtp() as s:
            s.ehlo()
            s.mail("a@client.example")
            self.assertEqual(s.rcpt("u@late.example")[0], 550)
            self.d.console("domain", "add", "late.example", "--customer", "acme", "--backend", "127.0.0.1:2",
                           "--active")
            self.assertEqual(s.rcpt("u@late.example")[0], 250)
            self.d.console("domain", "remove", "late.example")
            self.assertEqual(s.rcpt("v@late.example")[0], 550)

    def test_oversize_refused(self):
        with self.smtp() as s:
            s.ehlo()
            code, resp = s.docmd("MAIL FROM:<a@client.example> SIZE=200001")
            self.assertEqual(code, 552)
            self.assertTrue(resp.startswith(b"5.3.4"))
            # A client that lies in SIZE= is caught at the end of DATA.
            s.docmd("MAIL FROM:<a@client.example> SIZE=100")
            s.rcpt("u@example.com")
            code, resp = s.data(b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 250)
            self.assertEqual(code, 552)
            self.assertTrue(resp.startswith(b"5.3.4"))
            # The session goes on.
            s.mail("a@client.example")
            s.rcpt("u@example.com")
            self.assertEqual(s.data(b"Subject: small\r\n\r\nok\r\n")[0], 250)

    def test_long_text_line_refused(self):
        with self.smtp() as s:
            s.ehlo()
            s.mail("a@client.example")
            s.rcpt("u@example.com")
            code, resp = s.data(b"Subject: long\r\n\r\n" + b"y" * 1200 + b"\r\n")
            self.assertEqual(code, 550)
            self.assertIn(b"line longer than 1000", resp)

    def test_bare_lf_refused(self):
        r = Raw(self.d.port)
        r.expect(220)
        r.send(b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n")
        for code in (250, 250, 250, 354):
            r.expect(code)
        r.send(b"Subject: smuggle\r\n\r\nx\n.\r\nMAIL FROM:<evil@c.example>\r\n\r\n.\r\n")
        self.assertIn("bare <LF>", r.expect(550))
        r.close()

    def test_half_close_after_pipelined_quit_still_gets_replies(self):
        r = Raw(self.d.port)
        r.expect(220)
        r.send(b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<hc@example.com>\r\nDATA\r\n")
        for code in (250, 250, 250, 354):
            r.expect(code)
        r.send(b"Subject: half close\r\n\r\nbye\r\n.\r\nQUIT\r\n")
        r.s.shutdown(socket.SHUT_WR)
        self.assertIn("queued as", r.expect(250))
        r.expect(221)
        self.assertTrue(r.closed())

    def test_bdat_chunking(self):
        r = Raw(self.d.port)
        r.expect(220)
        r.send(b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<u@example.com>\r\n")
        for code in (250, 250, 250):
            r.expect(code)
        part1 = b"Subject: chunked\r\n\r\n"
        part2 = b".starts with dot\r\nend\r\n"
        r.send(b"BDAT %d\r\n" % len(part1) + part1 + b"BDAT %d LAST\r\n" % len(part2) + part2)
        r.expect(250)
        qid = r.expect(250).rsplit(" ", 1)[1]
        r.close()
        _, body = strip_received(self.stored(qid))
        self.assertEqual(body, part1 + part2)

    def test_starttls_then_transaction(self):
        ctx = ssl.create_default_context(cafile=self.d.cert)
        with self.smtp() as s:
            s.ehlo()
            code, _ = s.starttls(context=ctx)
            self.assertEqual(code, 220)
            s.ehlo("client.example")
            self.assertFalse(s.has_extn("starttls"))
            s.mail("a@client.example")
            s.rcpt("tls@example.com")
            code, resp = s.data(b"Subject: over tls\r\n\r\nsecret\r\n")
            self.assertEqual(code, 250)
            qid = resp.decode().rsplit(" ", 1)[1]
        header, body = strip_received(self.stored(qid))
        self.assertIn(b"with ESMTPS id", header)
        self.assertIn(b"(using TLSv1.3 with cipher", header)
        entry = [e for e in self.d.queue() if e["id"] == qid][0]
        self.assertTrue(entry["tls"].startswith("TLSv1.3"), entry)

    def test_starttls_tls12_minimum(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.d.cert)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        try:
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        with self.smtp() as s:
            s.ehlo()
            with self.assertRaises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError)):
                s.starttls(context=ctx)

    def test_swaks_pipelining_and_tls(self):
        p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.d.port, "--to", "sw@example.com",
                            "--from", "a@client.example", "--helo", "client.example", "--pipeline", "--tls",
                            "--tls-verify", "--tls-ca-path", self.d.cert, "--tls-sni", "mx.test.local",
                            "--header", "Subject: via swaks"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("250 2.0.0 Ok: queued as", p.stdout)
        self.assertIn("TLS started", p.stdout)

    def test_http_verb_closed(self):
        r = Raw(self.d.port)
        r.expect(220)
        r.line("POST / HTTP/1.1")
        self.assertTrue(r.closed())
        self.assertEqual(r.buf, b"")

    def test_unknown_commands_end_session(self):
        r = Raw(self.d.port)
        r.expect(220)
        for i in range(4):
            r.line("XJUNK%d" % i)
            r.expect(502)
        r.line("XJUNK4")
        r.expect(502)
        self.assertIn("too many unrecognized commands", r.expect(421))
        self.assertTrue(r.closed())

    def test_error_limit_ends_session(self):
        r = Raw(self.d.port)
        r.expect(220)
        r.line("EHLO c.example")
        r.expect(250)
        r.line("MAIL FROM:<a@c.example>")
        r.expect(250)
        for i in range(19):
            r.line("RCPT TO:<u%d@nowhere.example>" % i)
            r.expect(550)
        r.line("RCPT TO:<last@nowhere.example>")
        r.expect(550)
        self.assertIn("too many errors", r.expect(421))
        self.assertTrue(r.closed())

    def test_command_line_too_long(self):
        r = Raw(self.d.port)
        r.expect(220)
        r.line("EHLO " + "a" * 600)
        r.expect(500)
        r.line("NOOP")
        r.expect(250)
        r.close()

    def test_too_many_recipients(self):
        r = Raw(self.d.port)
        r.expect(220)
        r.line("EHLO c.example")
        r.expect(250)
        r.line("MAIL FROM:<a@c.example>")
        r.expect(250)
        payload = b"".join(b"RCPT TO:<r%d@example.com>\r\n" % i for i in range(101))
        r.send(payload)
        for i in range(100):
            r.expect(250)
        self.assertIn("4.5.3", r.expect(452))
        r.close()

    def test_per_ip_connection_cap(self):
        conns = []
        try:
            for _ in range(6):
                c = Raw(self.d.port, source="127.0.0.9")
                c.expect(220)
                conns.append(c)
            extra = Raw(self.d.port, source="127.0.0.9")
            self.assertIn("too many connections", extra.expect(421))
            self.assertTrue(extra.closed())
            other = Raw(self.d.port, source="127.0.0.10")  # another address is unaffected
            other.expect(220)
            other.close()
        finally:
            for c in conns:
                c.close()
        time.sleep(0.3)
        again = Raw(self.d.port, source="127.0.0.9")
        again.expect(220)
        again.close()


class Timeouts(unittest.TestCase):
    """Timers with short limits: idle command wait, DATA wait, total session, greeting."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(smtp_extra='command_timeout = "1s"\ndata_timeout = "2s"\nsession_timeout = "4s"\n'
                                  'greeting_delay = "600ms"\n').start()

    @classmethod
    def tearDownClass(cls):
        assert cls.d.stop() == 0
        cls.d.cleanup()

    def connect(self):
        r = Raw(self.d.port)
        r.expect(220)
        return r

    def test_pregreet_talker_refused(self):
        r = Raw(self.d.port)
        r.line("EHLO too.early")
        code, text = r.reply()
        self.assertEqual(code, 554)
        self.assertIn("before the greeting", text)
        self.assertTrue(r.closed())

    def test_idle_timeout(self):
        r = self.connect()
        t0 = time.time()
        code, text = r.reply()
        self.assertEqual(code, 421)
        self.assertIn("timeout", text)
        self.assertLess(time.time() - t0, 3.0)
        self.assertTrue(r.closed())

    def test_data_timeout_is_separate(self):
        r = self.connect()
        r.send(b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n")
        for code in (250, 250, 250, 354):
            r.expect(code)
        t0 = time.time()
        r.send(b"Subject: slow\r\n")
        time.sleep(1.3)  # longer than the command timeout, shorter than the DATA timeout
        r.send(b"\r\nstill here\r\n.\r\n")
        r.expect(250)
        # Now idle in command state: the short timer applies again.
        self.assertEqual(r.reply()[0], 421)
        self.assertGreater(time.time() - t0, 1.3)

    def test_total_session_time(self):
        r = self.connect()
        t0 = time.time()
        while True:
            r.line("NOOP")
            code, text = r.reply()
            if code == 421:
                break
            self.assertEqual(code, 250)
            time.sleep(0.5)
        self.assertIn("session time limit", text)
        self.assertGreater(time.time() - t0, 3.0)


class Lifecycle(unittest.TestCase):
    def test_sigterm_lets_a_transaction_finish(self):
        d = Daemon(smtp_extra='shutdown_timeout = "5s"\n').start()
        try:
            r = Raw(d.port)
            r.expect(220)
            r.send(b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n")
            for code in (250, 250, 250, 354):
                r.expect(code)
            idle = Raw(d.port)
            idle.expect(220)
            d.proc.send_signal(15)
            self.assertEqual(idle.reply()[0], 421)  # idle sessions are told at once
            time.sleep(0.3)
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", d.port), timeout=1).recv(10)
            r.send(b"Subject: finishing\r\n\r\nbody\r\n.\r\n")
            self.assertIn("queued as", r.expect(250))
            self.assertEqual(r.reply()[0], 421)
            self.assertEqual(d.proc.wait(timeout=10), 0)
            self.assertEqual(len(d.queue()), 1)
        finally:
            d.cleanup()

    def test_sd_notify_ready_and_stopping(self):
        d = Daemon()
        sock_path = os.path.join(d.dir, "notify.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ns:
            ns.bind(sock_path)
            ns.settimeout(10)
            try:
                d.start(env={"NOTIFY_SOCKET": sock_path})
                self.assertIn(b"READY=1", ns.recv(4096))
                d.proc.send_signal(15)
                self.assertIn(b"STOPPING=1", ns.recv(4096))
                self.assertEqual(d.proc.wait(timeout=10), 0)
            finally:
                d.cleanup()

    def test_version_names_the_libraries(self):
        p = subprocess.run([os.environ.get("MXGUARDD_BIN", "build/src/engine/mxguardd"), "--version"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        for lib in ("liburing", "OpenSSL 3", "Hyperscan", "LMDB"):
            self.assertIn(lib, p.stdout)

    def test_io_uring_unavailable_is_explained(self):
        knob = "/proc/sys/kernel/io_uring_disabled"
        if not os.access(knob, os.W_OK):
            self.skipTest("cannot toggle kernel.io_uring_disabled here")
        with open(knob) as f:
            saved = f.read().strip()
        d = Daemon(domains=())
        try:
            with open(knob, "w") as f:
                f.write("2")
            p = subprocess.run([os.environ.get("MXGUARDD_BIN", "build/src/engine/mxguardd"), "--config", d.config],
                               capture_output=True, text=True, timeout=10)
        finally:
            with open(knob, "w") as f:
                f.write(saved)
            d.cleanup()
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot set up io_uring", p.stderr)

    def test_bad_config_names_the_key(self):
        d = Daemon(smtp_extra="max_recipientz = 5\n", domains=())
        try:
            p = subprocess.run([os.environ.get("MXGUARDD_BIN", "build/src/engine/mxguardd"), "--config", d.config],
                               capture_output=True, text=True, timeout=10)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("smtp.max_recipientz", p.stderr)
        finally:
            d.cleanup()

    def test_port_in_use_is_a_clear_error(self):
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", 0))
            blocker.listen()
            d = Daemon(port=blocker.getsockname()[1])
            try:
                p = subprocess.run([os.environ.get("MXGUARDD_BIN", "build/src/engine/mxguardd"), "--config",
                                    d.config], capture_output=True, text=True, timeout=10)
                self.assertEqual(p.returncode, 1)
                self.assertIn("cannot listen on 127.0.0.1", p.stderr)
            finally:
                d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
