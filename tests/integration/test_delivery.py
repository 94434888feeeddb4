"""Delivery end to end: mxguardd relays to real backends on loopback
(aiosmtpd with STARTTLS, implicit TLS and AUTH; Postfix's smtp-sink),
retries while a backend is down, returns failures to the sender as DSNs
delivered to the sender domain's MX (named by a real Knot DNS server), and
loses nothing across `kill -9`."""
import email
import os
import random
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402
from knot import Knot  # noqa: E402

from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
RETRY = "2s"


class Recorder:
    """aiosmtpd handler: keeps every delivered envelope; answers RCPT by
    the local part (unknown* -> 550, later* -> 450)."""

    def __init__(self):
        self.messages = []
        self.rcpts = {}  # address -> RCPT commands seen (deliveries and callouts)
        self.ehlos = 0   # one per connection (two with STARTTLS)
        self.quits = 0
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.lock:
            self.ehlos += 1
        return responses

    async def handle_QUIT(self, server, session, envelope):
        with self.lock:
            self.quits += 1
        return "221 Bye"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpts[address] = self.rcpts.get(address, 0) + 1
        local = address.split("@")[0]
        if local.startswith("unknown"):
            return "550 5.1.1 <%s>: no such user here" % address
        if local.startswith("later"):
            return "450 4.2.1 <%s>: mailbox busy, try later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append({
                "from": envelope.mail_from,
                "rcpts": list(envelope.rcpt_tos),
                "data": envelope.original_content,
                "tls": server.transport.get_extra_info("ssl_object") is not None,
                "auth": session.auth_data,
                "mail_options": list(envelope.mail_options),
            })
        return "250 2.0.0 accepted"

    def wait(self, n, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            time.sleep(0.05)
        with self.lock:
            raise AssertionError("expected %d deliveries, got %d" % (n, len(self.messages)))


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"relay" and auth_data.password == b"s3cret pw"
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


class Backend:
    """An aiosmtpd server in a thread; stop() shuts it down."""

    def __init__(self, host="127.0.0.1", port=None, starttls=None, implicit=None, auth=False, idle_timeout=None):
        self.rec = Recorder()
        self.port = port or mxg.free_port(host)
        kwargs = {}
        if starttls:
            kwargs["tls_context"] = starttls
        if auth:
            kwargs.update(authenticator=authenticator, auth_require_tls=True)
        if implicit:
            kwargs["ssl_context"] = implicit
        if idle_timeout:
            kwargs["timeout"] = idle_timeout  # closes a connection silent for that long
        self.ctl = Controller(self.rec, hostname=host, port=self.port, **kwargs)
        self.ctl.start()

    def stop(self):
        self.ctl.stop()


def server_context(d):
    cert, key = mxg.make_test_cert(d, "backend.test")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def send(port, sender, rcpts, body, subject="test", headers=""):
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@client.test>\r\n%s\r\n%s\r\n"
           % (sender or "nobody@client.test", rcpts[0], subject, random.getrandbits(64), headers, body))
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("client.test")
        s.sendmail(sender, rcpts, msg.encode())
    return msg.encode()


def split_ours(raw):
    """Our added header fields and the client's message, as mxg.strip_received."""
    return mxg.strip_received(raw.replace(b"\n", b"\r\n") if b"\r\n" not in raw else raw)


class DeliveryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mxg-deliv-")
        cls.tls_ctx = server_context(cls.tmp)
        # The DSN sink: Knot names it as the MX of the senders' domain.
        cls.mx_port = mxg.free_port("127.0.0.1")
        cls.dsn = Backend(host="127.0.0.1", port=cls.mx_port)
        kdir = os.path.join(cls.tmp, "knot")
        os.mkdir(kdir)
        cls.knot = Knot(kdir, {"sender.test": ["@ MX 10 mx.sender.test.", "mx A 127.0.0.1"],
                               "nullmx.test": ["@ MX 0 ."]})

    @classmethod
    def tearDownClass(cls):
        cls.dsn.stop()
        cls.knot.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.backends = []
        self.d = None

    def tearDown(self):
        for b in self.backends:
            b.stop()
        if self.d:
            if os.environ.get("MXG_SHOW_LOG"):
                sys.stderr.write(self.d.read_log()[-6000:])
            self.d.stop()
            self.d.cleanup()
        with self.dsn.rec.lock:
            self.dsn.rec.messages.clear()

    def daemon(self, lifetime="7d", tls=False, delivery_extra=""):
        delivery = ('[delivery]\nretry_interval = "%s"\nmax_queue_lifetime = "%s"\nmx_port = %d\n'
                    'connect_timeout = "5s"\ncommand_timeout = "10s"\n%s'
                    '[dns]\nservers = ["127.0.0.1:%d"]\ntimeout = "2s"\n'
                    '[scan]\nnetwork_checks = false\n' % (RETRY, lifetime, self.mx_port, delivery_extra, self.knot.port))
        self.d = mxg.Daemon(smtp_extra="\n" + delivery, domains=(), tls=tls)
        return self.d

    def add_domain(self, name, backend, *extra):
        self.d.console("domain", "add", name, "--customer", "acme", "--backend", backend, "--active", *extra)
        self.d.console("domain", "set", name, "reject_threshold=100", "quarantine_threshold=100",
                       "greylist_threshold=100")

    def backend(self, **kw):
        b = Backend(**kw)
        self.backends.append(b)
        return b

    def wait_queue_empty(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            q = self.d.queue()
            if not q:
                return
            time.sleep(0.2)
        raise AssertionError("queue not empty: %s" % self.d.queue())

    def wait_queue(self, pred, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            q = self.d.queue()
            if pred(q):
                return q
            time.sleep(0.2)
        raise AssertionError("queue never matched: %s" % self.d.queue())

    # --- plain relaying -------------------------------------------------

    def test_delivered_bytes_are_received_bytes_plus_our_headers(self):
        b = self.backend()
        self.daemon().start()
        self.add_domain("example.com", "127.0.0.1:%d" % b.port, "--tls", "none")
        sent = send(self.d.port, "alice@sender.test", ["bob@example.com"], "Hello.\r\n.leading dot\r\n")
        got = b.rec.wait(1)[0]
        self.assertEqual(got["from"], "alice@sender.test")
        self.assertEqual(got["rcpts"], ["bob@example.com"])
        ours, theirs = mxg.strip_received(got["data"])
        self.assertEqual(theirs, sent)
        self.assertIn(b"by mx.test.local (MxGuard)", ours)
        self.assertIn(b"X-MxGuard-Score:", ours)
        self.assertIn("SIZE=%d" % len(got["data"]), " ".join(got["mail_options"]))
        # Nothing of a delivered message is kept.
        self.wait_queue_empty()

    def test_smtp_sink_receives_a_burst(self):
        port = mxg.free_port()
        dump = os.path.join(self.tmp, "sink-%d" % port)
        os.makedirs(dump)
        os.chmod(dump, 0o777)
        os.chmod(self.tmp, 0o755)  # smtp-sink writes as nobody
        errors = open(os.path.join(self.tmp, "sink-%d.log" % port), "wb")
        sink = subprocess.Popen([SMTP_SINK, "-u", "nobody", "-d", dump + "/%M%S.", "127.0.0.1:%d" % port, "64"],
                                stdout=errors, stderr=errors)
        try:
            deadline = time.time() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline or sink.poll() is not None:
                        raise AssertionError("smtp-sink did not start: %s" % open(errors.name).read())
                    time.sleep(0.05)
            self.daemon().start()
            self.add_domain("example.com", "127.0.0.1:%d" % port, "--tls", "none")
            n = 40
            for i in range(n):
                send(self.d.port, "alice@sender.test", ["user%d@example.com" % (i % 7)], "message %d\r\n" % i)
            self.wait_queue_empty(60)
            deadline = time.time() + 10
            while time.time() < deadline and len(os.listdir(dump)) < n:
                time.sleep(0.1)
            files = os.listdir(dump)
            self.assertEqual(len(files), n)
            bodies = set()
            for f in files:
                with open(os.path.join(dump, f), "rb") as fh:
                    data = fh.read()
                for i in range(n):
                    if b"\nmessage %d\r\n" % i in data or b"\nmessage %d\n" % i in data:
                        bodies.add(i)
            self.assertEqual(bodies, set(range(n)))
        finally:
            sink.terminate()
            sink.wait()
            errors.close()

    # --- connection cache -------------------------------------------------

    def test_idle_connection_carries_the_next_messages_then_quits(self):
        b = self.backend(starttls=self.tls_ctx)
        self.daemon(delivery_extra='connection_cache_time = "3s"\n').start()
        self.add_domain("example.com", "127.0.0.1:%d" % b.port)  # tls=may
        for i in range(4):
            send(self.d.port, "alice@sender.test", ["bob@example.com"], "cached %d\r\n" % i)
            b.rec.wait(i + 1)
            time.sleep(0.3)
        got = b.rec.wait(4)
        self.assertTrue(all(m["tls"] for m in got))
        # Both shards may have opened one connection (EHLO before and after
        # STARTTLS each); never one per message.
        with b.rec.lock:
            ehlos, quits = b.rec.ehlos, b.rec.quits
        self.assertIn(ehlos, (2, 4), "connections were not reused")
        self.assertEqual(quits, 0)
        # After the cache time the idle connections say goodbye.
        deadline = time.time() + 10
        while time.time() < deadline and b.rec.quits < ehlos // 2:
            time.sleep(0.1)
        self.assertEqual(b.rec.quits, ehlos // 2)
        self.wait_queue_empty()

    def test_backend_closing_an_idle_connection_loses_nothing(self):
        b = self.backend(idle_timeout=0.5)
        self.daemon(delivery_extra='connection_cache_time = "30s"\n').start()
        self.add_domain("example.com", "127.0.0.1:%d" % b.port, "--tls", "none")
        for i in range(3):
            send(self.d.port, "alice@sender.test", ["bob@example.com"], "after idle %d\r\n" % i)
            b.rec.wait(i + 1)
            time.sleep(1.2)  # the backend drops the cached connection meanwhile
        self.assertEqual(b.rec.ehlos, 3)
        self.wait_queue_empty()
        self.assertNotIn("deferred", self.d.read_log())

    # --- TLS and AUTH ---------------------------------------------------

    def test_starttls_and_auth(self):
        b = self.backend(starttls=self.tls_ctx, auth=True)
        self.daemon().start()
        pwfile = os.path.join(self.d.dir, "pw")
        with open(pwfile, "w") as f:
            f.write("s3cret pw\n")
        self.add_domain("example.com", "127.0.0.1:%d" % b.port, "--tls", "encrypt", "--trust", "auth",
                        "--auth-user", "relay", "--auth-password-file", pwfile)
        send(self.d.port, "alice@sender.test", ["bob@example.com"], "secret\r\n")
        got = b.rec.wait(1)[0]
        self.assertTrue(got["tls"])
        self.assertEqual(got["auth"].login, b"relay")
        self.wait_queue_empty()
        self.assertNotIn("s3cret", self.d.read_log())

    def test_wrong_password_defers_with_a_clear_error(self):
        b = self.backend(starttls=self.tls_ctx, auth=True)
        self.daemon().start()
        pwfile = os.path.join(self.d.dir, "pw")
        with open(pwfile, "w") as f:
            f.write("wrong\n")
        self.add_domain("example.com", "127.0.0.1:%d" % b.port, "--tls", "may", "--trust", "auth",
                        "--auth-user", "relay", "--auth-password-file", pwfile)
        send(self.d.port, "alice@sender.test", ["bob@example.com"], "x\r\n")
        q = self.wait_queue(lambda q: q and q[0]["attempts"] >= 1)
        # The log is written asynchronously. Wait for the line itself: a bare
        # "535" can also match the random temporary directory's name.
        log = self.d.wait_log("authentication failed for user relay")
        self.assertIn("authentication failed for user relay", log)
        self.assertRegex(log, r"\b535\b")
        self.assertEqual(b.rec.messages, [])
        self.assertNotIn("wrong", self.d.read_log().replace("wrong password", ""))
        self.assertEqual(q[0]["recipients"], ["bob@example.com"])

    def test_implicit_tls_on_port_465(self):
        try:
            b = self.backend(host="127.0.0.65", port=465, implicit=self.tls_ctx)
        except (OSError, RuntimeError) as e:
            self.skipTest("cannot bind 127.0.0.65:465: %s" % e)
        self.daemon().start()
        self.add_domain("example.com", "127.0.0.65:465", "--tls", "encrypt")
        send(self.d.port, "alice@sender.test", ["bob@example.com"], "over implicit TLS\r\n")
        got = b.rec.wait(1)[0]
        self.assertTrue(got["tls"])
        self.wait_queue_empty()

    def test_encrypt_refuses_a_backend_without_starttls(self):
        b = self.backend()
        self.daemon().start()
        self.add_domain("example.com", "127.0.0.1:%d" % b.port, "--tls", "encrypt")
        send(self.d.port, "alice@sender.test", ["bob@example.com"], "must not go in clear\r\n")
        self.wait_queue(lambda q: q and q[0]["attempts"] >= 1)
        time.sleep(0.5)
        self.assertEqual(b.rec.messages, [])
        self.assertIn("STARTTLS", self.d.wait_log("STARTTLS"))
        # The operator relaxes the policy: the next attempt delivers.
        self.d.console("domain", "set", "example.com", "tls=may")
        b.rec.wait(1, timeout=20)
        self.wait_queue_empty()

    # --- retries and bounces -------------------------------------------

    def test_backend_down_then_up_is_delivered_within_a_retry(self):
        port = mxg.free_port()
        self.daemon().start()
        self.add_domain("example.com", "127.0.0.1:%d" % port, "--tls", "none")
        sent = send(self.d.port, "alice@sender.test", ["bob@example.com"], "queued while down\r\n")
        q = self.wait_queue(lambda q: q and q[0]["attempts"] >= 1)
        self.assertEqual(q[0]["state"], "deferred")
        b = self.backend(port=port)
        t0 = time.time()
        got = b.rec.wait(1, timeout=15)[0]
        self.assertLess(time.time() - t0, 2 * 2.2 + 1.5)  # one retry interval (plus jitter and the poll)
        self.assertEqual(mxg.strip_received(got["data"])[1], sent)
        self.wait_queue_empty()

    def test_per_recipient_results_and_dsn_to_the_sender_mx(self):
        b = self.backend()
        self.daemon().start()
        self.add_domain("example.com", "127.0.0.1:%d" % b.port, "--tls", "none")
        send(self.d.port, "alice@sender.test", ["ok@example.com", "later@example.com", "unknown@example.com"],
             "three recipients\r\n", subject="per-rcpt")
        got = b.rec.wait(1)[0]
        self.assertEqual(got["rcpts"], ["ok@example.com"])
        # The 550 comes back to alice through sender.test's MX as a DSN.
        dsn = self.dsn.rec.wait(1, timeout=20)[0]
        self.assertIn(dsn["from"], ("", "<>"))
        self.assertEqual(dsn["rcpts"], ["alice@sender.test"])
        m = email.message_from_bytes(dsn["data"])
        self.assertEqual(m.get_content_type(), "multipart/report")
        self.assertEqual(m.get_param("report-type"), "delivery-status")
        parts = [p.get_content_type() for p in m.walk()]
        self.assertIn("message/delivery-status", parts)
        self.assertIn("text/rfc822-headers", parts)
        text = dsn["data"].decode(errors="replace")
        self.assertIn("unknown@example.com", text)
        self.assertIn("5.1.1", text)
        self.assertNotIn("Final-Recipient: rfc822; ok@example.com", text)
        self.assertIn("Subject: per-rcpt", text)
        # later@ stays queued with its 450 as the last error.
        q = self.wait_queue(lambda q: q and q[0]["recipients"] == ["ok@example.com", "later@example.com",
                                                                     "unknown@example.com"])
        log = self.d.read_log()
        self.assertIn("rcpt=later@example.com status=deferred", log)
        self.assertIn("450", log)
        self.assertEqual(len(q), 1)

    def test_expired_message_bounces_with_4_4_7(self):
        port = mxg.free_port()
        self.daemon(lifetime="3s").start()
        self.add_domain("example.com", "127.0.0.1:%d" % port, "--tls", "none")
        send(self.d.port, "alice@sender.test", ["bob@example.com"], "nobody home\r\n", subject="expiring")
        dsn = self.dsn.rec.wait(1, timeout=30)[0]
        text = dsn["data"].decode(errors="replace")
        self.assertIn("4.4.7", text)
        self.assertIn("Action: failed", text)
        self.assertIn("bob@example.com", text)
        self.wait_queue_empty()

    def test_no_bounce_for_the_null_sender(self):
        b = self.backend()
        self.daemon().start()
        self.add_domain("example.com", "127.0.0.1:%d" % b.port, "--tls", "none")
        send(self.d.port, "", ["unknown@example.com"], "a bounce that bounces\r\n")
        self.wait_queue_empty()
        time.sleep(3)  # a DSN, if one were made, would be queued and sent by now
        self.assertEqual(self.dsn.rec.messages, [])
        self.assertEqual(self.d.queue(), [])
        self.assertIn("status=bounced", self.d.wait_log("status=bounced"))

    def test_null_mx_sender_domain_gets_no_dsn_attempts(self):
        b = self.backend()
        self.daemon().start()
        self.add_domain("example.com", "127.0.0.1:%d" % b.port, "--tls", "none")
        send(self.d.port, "someone@nullmx.test", ["unknown@example.com"], "x\r\n")
        # The DSN to a domain that accepts no mail fails at once; being a
        # bounce itself, it is dropped, never bounced again.
        self.wait_queue_empty()
        self.assertIn("null MX", self.d.wait_log("null MX"))

    # --- recipient callouts ----------------------------------------------

    def rcpt_reply(self, rcpt, sender="alice@sender.test"):
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=60) as s:
            s.ehlo("client.test")
            s.mail(sender)
            code, text = s.rcpt(rcpt)
            s.rset()
            return code, text.decode()

    def test_callout_known_unknown_down_and_cached(self):
        b = self.backend()
        self.daemon().start()
        self.add_domain("example.com", "127.0.0.1:%d" % b.port, "--tls", "none", "--recipients", "callout")
        self.add_domain("down.example", "127.0.0.1:%d" % mxg.free_port(), "--tls", "none",
                        "--recipients", "callout")
        code, _ = self.rcpt_reply("someone@example.com")
        self.assertEqual(code, 250)
        code, text = self.rcpt_reply("unknown1@example.com")
        self.assertEqual(code, 550)
        self.assertIn("5.1.1", text)
        # A backend that cannot be reached never produces a 550.
        code, text = self.rcpt_reply("anyone@down.example")
        self.assertEqual(code, 450, text)
        # A 4xx from the backend is not an answer either.
        code, _ = self.rcpt_reply("later1@example.com")
        self.assertEqual(code, 450)
        # Cached: new sessions (whichever shard they land on) do not ask again.
        for _ in range(4):
            self.assertEqual(self.rcpt_reply("someone@example.com")[0], 250)
            self.assertEqual(self.rcpt_reply("unknown1@example.com")[0], 550)
        self.assertEqual(b.rec.rcpts.get("someone@example.com"), 1)
        self.assertEqual(b.rec.rcpts.get("unknown1@example.com"), 1)
        # The 450s were not cached.
        self.rcpt_reply("later1@example.com")
        self.assertEqual(b.rec.rcpts.get("later1@example.com"), 2)
        # A verified recipient's mail is delivered as usual.
        send(self.d.port, "alice@sender.test", ["someone@example.com"], "verified\r\n")
        self.assertEqual(b.rec.wait(1)[0]["rcpts"], ["someone@example.com"])
        self.wait_queue_empty()

    # --- durability -----------------------------------------------------

    def test_kill_9_during_delivery_loses_nothing(self):
        b = self.backend()
        self.daemon().start()
        self.add_domain("example.com", "127.0.0.1:%d" % b.port, "--tls", "none")
        acked = []
        stop = threading.Event()

        def client(n):
            i = 0
            while not stop.is_set() and i < 5000:
                i += 1
                tag = "k9-%d-%d" % (n, i)
                try:
                    send(self.d.port, "alice@sender.test", ["bob@example.com"], "%s\r\n" % tag)
                    acked.append(tag)
                except (OSError, smtplib.SMTPException):
                    time.sleep(0.05)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        try:
            for _ in range(5):
                time.sleep(random.uniform(0.8, 1.6))
                self.d.kill9()
                self.d.start()
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertGreater(len(acked), 20)
        self.wait_queue_empty(120)
        delivered = set()
        for m in b.rec.messages:
            for line in m["data"].split(b"\r\n"):
                if line.startswith(b"k9-"):
                    delivered.add(line.decode())
        missing = [t for t in acked if t not in delivered]
        self.assertEqual(missing, [], "acknowledged but never delivered")
        self.assertEqual(len(set(acked)), len(acked))
        dups = len(b.rec.messages) - len(delivered)
        sys.stderr.write("kill -9 x5: %d acknowledged, %d delivered, %d duplicates\n"
                         % (len(acked), len(delivered), dups))


def spki_sha256(cert):
    """TLSA 3 1 1 association data: SHA-256 of the certificate's SubjectPublicKeyInfo."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"], capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, capture_output=True,
                         check=True).stdout
    import hashlib
    return hashlib.sha256(der).hexdigest()


class DaneTest(unittest.TestCase):
    """tls=dane: TLSA records in a DNSSEC-signed zone served by Knot, the
    zone's trust anchor given to the resolver."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mxg-dane-")
        cert, key = mxg.make_test_cert(cls.tmp, "mail.dane.test")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        cls.backend = Backend(starttls=ctx)
        port = cls.backend.port
        good = spki_sha256(cert)
        bad = "%064x" % (int(good, 16) ^ 1)
        kdir = os.path.join(cls.tmp, "knot")
        os.mkdir(kdir)
        cls.knot = Knot(kdir, {"dane.test": ["mail A 127.0.0.1", "_%d._tcp.mail TLSA 3 1 1 %s" % (port, good),
                                             "wrong A 127.0.0.1", "_%d._tcp.wrong TLSA 3 1 1 %s" % (port, bad),
                                             "plain A 127.0.0.1"]},
                        signed=["dane.test"])
        cls.anchor = cls.knot.trust_anchor("dane.test")

    @classmethod
    def tearDownClass(cls):
        cls.backend.stop()
        cls.knot.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_matching_tlsa_delivers_and_a_mismatch_defers(self):
        conf = ('\n[delivery]\nretry_interval = "2s"\ndane_trust_anchor = "%s"\n'
                '[dns]\nservers = ["127.0.0.1:%d"]\ntimeout = "2s"\n[scan]\nnetwork_checks = false\n'
                % (self.anchor, self.knot.port))
        d = mxg.Daemon(smtp_extra=conf, domains=())
        try:
            d.start()
            port = self.backend.port
            for dom, host in (("good.example", "mail"), ("bad.example", "wrong"), ("none.example", "plain")):
                d.console("domain", "add", dom, "--customer", "acme", "--backend",
                          "%s.dane.test:%d" % (host, port), "--tls", "dane", "--active")
                d.console("domain", "set", dom, "reject_threshold=100", "quarantine_threshold=100",
                          "greylist_threshold=100")
            send(d.port, "alice@sender.test", ["bob@good.example"], "dane good\r\n")
            got = self.backend.rec.wait(1)[0]
            self.assertEqual(got["rcpts"], ["bob@good.example"])
            self.assertTrue(got["tls"])
            # A secure zone without TLSA for the host: opportunistic TLS.
            send(d.port, "alice@sender.test", ["carol@none.example"], "dane none\r\n")
            self.backend.rec.wait(2)
            # The wrong association: the handshake fails, the message waits.
            send(d.port, "alice@sender.test", ["eve@bad.example"], "dane bad\r\n")
            deadline = time.time() + 30
            while time.time() < deadline:
                q = d.queue()
                if q and q[0]["attempts"] >= 1:
                    break
                time.sleep(0.2)
            time.sleep(2.5)  # another attempt at least
            self.assertEqual(len(self.backend.rec.messages), 2)
            q = d.queue()
            self.assertEqual(len(q), 1)
            self.assertEqual(q[0]["recipients"], ["eve@bad.example"])
            log = d.read_log()
            self.assertIn("rcpt=eve@bad.example status=deferred", log)
            self.assertIn("TLS", log[log.index("rcpt=eve@bad.example status=deferred"):][:400])
        except Exception:
            sys.stderr.write(d.read_log()[-5000:])
            raise
        finally:
            d.stop()
            d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
