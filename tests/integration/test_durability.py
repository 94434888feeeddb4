"""A 250 after DATA means durable: load the daemon, kill -9 it at a random
moment, restart, repeat; every acknowledged message must then be in the
queue, byte-identical."""
import os
import random
import socket
import sys
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mxg import Daemon, strip_received  # noqa: E402

ROUNDS = int(os.environ.get("DURABILITY_ROUNDS", "5"))
SENDERS = 12


def sender(port, tag, acked, stop):
    """Sends messages on one persistent connection until the server dies or `stop` is set."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = s.makefile("rb")

        def reply():
            while True:
                line = f.readline()
                if not line:
                    raise EOFError
                if line[3:4] != b"-":
                    return line

        reply()
        s.sendall(b"EHLO load.example\r\n")
        reply()
        n = 0
        while not stop.is_set():
            n += 1
            mid = "%s-%d" % (tag, n)
            text = os.urandom(random.randint(100, 6000)).hex().encode()
            lines = b"\r\n".join(text[i:i + 76] for i in range(0, len(text), 76))
            body = (b"From: load@load.example\r\nSubject: durability " + mid.encode() +
                    b"\r\nMessage-ID: <" + mid.encode() + b"@load.example>\r\n\r\n" + lines + b"\r\n")
            s.sendall(b"MAIL FROM:<load@load.example>\r\nRCPT TO:<d%d@example.com>\r\nDATA\r\n" % n)
            if not reply().startswith(b"250") or not reply().startswith(b"250") or not reply().startswith(b"354"):
                return
            s.sendall(body + b".\r\n")
            r = reply()
            if not r.startswith(b"250"):
                raise AssertionError("message refused: %r" % r)
            if r.startswith(b"250 2.0.0 Ok: queued as "):
                acked.append((r.split()[-1].decode(), body))
        s.close()
    except (OSError, EOFError):
        return  # the daemon was killed under us: whatever had no 250 is not owed


class Durability(unittest.TestCase):
    def test_kill9_under_load_loses_no_acknowledged_message(self):
        d = Daemon(shards=2)
        try:
            acked = []
            for rnd in range(ROUNDS):
                d.start()
                stop = threading.Event()
                threads = [threading.Thread(target=sender, args=(d.port, "r%d-t%d" % (rnd, i), acked, stop))
                           for i in range(SENDERS)]
                for t in threads:
                    t.start()
                # Kill at a random moment: after a random number of acknowledgements
                # (bounded in time), while every sender is mid-dialogue.
                target = len(acked) + random.randint(600, 1500)
                deadline = time.time() + 30
                while len(acked) < target and time.time() < deadline:
                    time.sleep(0.005)
                before = len(acked)
                d.kill9()
                stop.set()
                for t in threads:
                    t.join(timeout=20)
                print("round %d: killed -9 with %d acknowledged so far (+%d between kill and stop)"
                      % (rnd, len(acked), len(acked) - before), flush=True)
            # A clean start and stop over the recovered spool.
            d.start()
            self.assertEqual(d.stop(), 0)

            self.assertGreater(len(acked), 2000, "the load was too small to mean anything")
            queued = {e["id"]: e for e in d.queue()}
            missing = [qid for qid, _ in acked if qid not in queued]
            self.assertEqual(missing, [], "acknowledged but lost: %d of %d" % (len(missing), len(acked)))
            def differs(item):
                qid, body = item
                return strip_received(d.console_bytes("queue", "show", qid, "--raw"))[1] != body
            with ThreadPoolExecutor(max_workers=4) as pool:
                mismatched = sum(pool.map(differs, acked))
            self.assertEqual(mismatched, 0)
            print("durability: %d acknowledged, %d in queue, all present and byte-identical"
                  % (len(acked), len(queued)), flush=True)
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
