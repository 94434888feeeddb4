#!/usr/bin/python3
"""The demo's backend (`bash .ci/demo`): a small SMTP server (aiosmtpd) that
stores every message mxguardd delivers in a Maildir, so a new user sees the
mail arrive. Not for production: it accepts anything it is given."""
import argparse
import mailbox
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class ToMaildir:
    """aiosmtpd handler: one Maildir file per message, with the envelope on top."""

    def __init__(self, path):
        self.path = path
        self.box = mailbox.Maildir(path, create=True)

    async def handle_DATA(self, server, session, envelope):
        head = "Return-Path: <%s>\r\n" % envelope.mail_from
        head += "".join("Delivered-To: %s\r\n" % r for r in envelope.rcpt_tos)
        # mailbox writes the file under tmp/ and then moves it to new/, so a
        # reader of new/ never sees half a message.
        key = self.box.add(mailbox.MaildirMessage(head.encode() + envelope.original_content))
        print("demo-sink: stored message from=<%s> to=%s file=%s"
              % (envelope.mail_from, ",".join(envelope.rcpt_tos), os.path.join(self.path, "new", key)),
              flush=True)
        return "250 2.0.0 stored in the demo Maildir"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--listen", default="127.0.0.1:2526", help="HOST:PORT (default 127.0.0.1:2526)")
    ap.add_argument("--maildir", required=True, help="Maildir to store messages in (created)")
    ap.add_argument("--ready", help="file to write this process's PID to once it listens")
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(":")
    stop = threading.Event()
    # Both signals, explicitly: a background job of a script starts with
    # SIGINT ignored, and Ctrl-C in the demo's terminal must still stop it.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    controller = Controller(ToMaildir(a.maildir), hostname=host, port=int(port))
    try:
        controller.start()
    except Exception as e:  # the port taken, most often: a sink of an earlier demo still runs
        print("demo-sink: cannot listen on %s: %s" % (a.listen, e), file=sys.stderr, flush=True)
        return 1
    if a.ready:
        with open(a.ready + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(a.ready + ".tmp", a.ready)
    stop.wait()
    controller.stop()
    if a.ready:
        try:
            os.unlink(a.ready)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
