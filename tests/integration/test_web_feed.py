"""The live feed, message tracking and statistics over mxguard-web (issue 17):
a real mxguardd delivering to an aiosmtpd backend, mail sent by smtplib (clean
ones, an EICAR one quarantined, a relay-denied RCPT), then /api/v1/feed,
/api/v1/feed?follow=1 (text/event-stream), /api/v1/track and /api/v1/stats
per role against the console on the same state dir."""
import http.client
import json
import os
import smtplib
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402


def clean_message(subject, rcpt, n):
    return ("From: Alice <alice@client.test>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <feed%d@client.test>\r\n"
            "Date: Tue, 08 Dec 2026 01:00:00 +0000\r\n\r\nHello, see you at lunch. Regards, Alice\r\n") % (
                rcpt, subject, n)


def send(d, rcpt, data, sender="alice@client.test"):
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo("client.test")
        assert s.sendmail(sender, [rcpt], data.encode()) == {}


def relay_denied(d):
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo("client.test")
        assert s.mail("relay@client.test")[0] == 250
        code, _ = s.rcpt("someone@notours.test")
        assert code >= 500, code


def wait(cond, what, timeout=60):
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        assert time.time() < deadline, "timed out waiting for " + what
        time.sleep(0.1)


def console_json(d, *args):
    return [json.loads(x) for x in d.console(*args, "--json").stdout.splitlines() if x.strip()]


class Stream:
    """GET /api/v1/feed?follow=1 read as text/event-stream, event by event."""

    def __init__(self, w, client, query="", timeout=30):
        self.c = http.client.HTTPSConnection("127.0.0.1", w.port, context=w.ctx, timeout=timeout)
        self.c.request("GET", "/api/v1/feed?follow=1" + query,
                       headers={"Cookie": client.cookie, "Accept": "text/event-stream"})
        self.r = self.c.getresponse()

    def event(self):
        """The next event as {field: value} (comments under ":"), None at the end of the stream."""
        ev = {}
        while True:
            line = self.r.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line == "":
                if ev:
                    return ev
                continue
            key, _, value = line.partition(":")
            ev[key or ":"] = value[1:] if value.startswith(" ") else value

    def entries_until(self, pred, timeout):
        """Entries of "entries" events until one satisfies pred (bounded by timeout)."""
        deadline = time.time() + timeout
        seen = []
        while time.time() < deadline:
            ev = self.event()
            assert ev is not None, "the stream ended early"
            if ev.get("event") == "entries":
                for e in json.loads(ev["data"])["entries"]:
                    seen.append(e)
                    if pred(e):
                        return seen
        raise AssertionError("no matching entry in the stream: %r" % seen)

    def close(self):
        self.c.close()


def main():
    from test_delivery import Backend
    from test_web import Web, Client, add_user, spam_message

    backend = Backend()
    d = mxg.Daemon(domains=())
    w = None
    streams = []
    try:
        c = d.console
        c("domain", "add", "shop.example", "--customer", "acme", "--backend", "127.0.0.1:%d" % backend.port,
          "--tls", "none", "--active")
        c("domain", "add", "globex.example", "--customer", "globex", "--backend", "127.0.0.1:2", "--active")
        for dom in ("shop.example", "globex.example"):
            c("domain", "set", dom, "reject_threshold=100", "quarantine_threshold=5", "greylist_threshold=100")
        add_user(d, "ada", "ada-password-1", "--role", "customer-admin", "--customer", "acme")
        add_user(d, "pat", "pat-password-1", "--role", "postmaster", "--domain", "globex.example")
        add_user(d, "olga", "olga-password-1", "--role", "operator")
        w = Web(d)
        d.start()

        send(d, "bob@shop.example", clean_message("Lunch on Friday", "bob@shop.example", 1))
        send(d, "dora@shop.example", clean_message("Minutes of the meeting", "dora@shop.example", 2))
        send(d, "carl@shop.example", spam_message("parcel for carl", "carl@shop.example", 3), "mallory@sender.test")
        relay_denied(d)
        wait(lambda: len(backend.rec.messages) >= 2, "two deliveries to the backend")
        wait(lambda: len(console_json(d, "quarantine", "list")) == 1, "the quarantined message")
        feed = wait(lambda: (lambda f: f if sum(e["delivery"] == "delivered" for e in f) == 2 else None)(
            console_json(d, "feed")), "the feed to show both deliveries")
        ids = {e["subject"]: e["id"] for e in feed}
        lunch, spam = ids["Lunch on Friday"], ids["parcel for carl"]

        ada, pat, olga = Client(w, "ada", "ada-password-1"), Client(w, "pat", "pat-password-1"), \
            Client(w, "olga", "olga-password-1")

        # The feed per role: the same entries as the console's --as shows.
        status, body = ada("GET", "/api/v1/feed")
        assert status == 200, (status, body)
        assert [e["id"] for e in body["entries"]] == [e["id"] for e in feed], body
        assert body["entries"] == console_json(d, "--as", "ada", "feed"), body
        assert {e["subject"]: e["delivery"] for e in body["entries"]} == {
            "Lunch on Friday": "delivered", "Minutes of the meeting": "delivered", "parcel for carl": "held"}, body
        assert {e["action"] for e in body["entries"]} == {"deliver", "quarantine"}, body
        status, body = olga("GET", "/api/v1/feed")
        assert status == 200 and len(body["entries"]) == 3, body
        status, body = pat("GET", "/api/v1/feed")
        assert status == 200 and body["entries"] == [], body
        print("ok: GET /api/v1/feed: the customer-admin and the operator see the 3 verdicts (as `feed --as`), "
              "a postmaster of another domain none")

        for who, query, n in ((ada, "?action=quarantine", 1), (ada, "?text=LUNCH", 1), (ada, "?domain=shop.example", 3),
                              (ada, "?limit=1", 1), (ada, "?since=%2B1d", 0)):
            status, body = who("GET", "/api/v1/feed" + query)
            assert status == 200 and len(body["entries"]) == n, (query, status, body)
        status, body = ada("GET", "/api/v1/feed?action=quarantine")
        assert body["entries"][0]["id"] == spam, body
        status, body = pat("GET", "/api/v1/feed?domain=shop.example")
        assert status == 404 and body["code"] == "not_found" and body["field"] == "domain", (status, body)
        assert "shop.example" in body["error"], body
        status, body = ada("GET", "/api/v1/feed?domain=globex.example")
        assert status == 404, (status, body)
        for query, field in (("action=explode", "action"), ("limit=0", "limit"), ("limit=x", "limit"),
                             ("after=garbage", "after"), ("since=yesterday-ish", "since"), ("follow=maybe", "follow")):
            status, body = ada("GET", "/api/v1/feed?" + query)
            assert status == 400 and body["field"] == field, (query, status, body)
        print("ok: feed filters (action, text, domain, limit, since); another tenant's domain 404; "
              "bad values 400 naming the field")

        # follow=1: an entry for a message sent after the stream opened.
        s_ada = Stream(w, ada)
        streams.append(s_ada)
        assert s_ada.r.status == 200, s_ada.r.status
        assert s_ada.r.getheader("Content-Type") == "text/event-stream", s_ada.r.getheader("Content-Type")
        first = s_ada.event()
        assert "id" in first and ":" in first, first
        s_pat = Stream(w, pat, timeout=3)
        streams.append(s_pat)
        assert s_pat.event() is not None
        # An open stream holds no lock: other requests are answered meanwhile.
        t0 = time.time()
        status, body = ada("GET", "/api/v1/feed?limit=1")
        assert status == 200 and time.time() - t0 < 5, (status, time.time() - t0)
        send(d, "bob@shop.example", clean_message("Late news", "bob@shop.example", 4))
        got = s_ada.entries_until(lambda e: e["subject"] == "Late news", 30)
        assert [e["subject"] for e in got] == ["Late news"], got
        assert got[-1]["recipients"] == ["bob@shop.example"], got
        # The other tenant's stream stays silent (keep-alives at most) until its socket times out.
        try:
            while True:
                ev = s_pat.event()
                assert ev is None or ev.get("event") != "entries", ev
                if ev is None:
                    break
        except (socket.timeout, TimeoutError):
            pass
        r, raw = w.request("GET", "/api/v1/feed?follow=1")
        assert r.status == 401, r.status
        r, raw = w.request("GET", "/api/v1/feed?follow=1&action=explode", headers={"Cookie": ada.cookie})
        assert r.status == 400 and json.loads(raw)["field"] == "action", (r.status, raw)
        # Resuming from a cursor (Last-Event-ID) gives what came after it.
        s_again = Stream(w, ada, query="&after=" + first["id"])
        streams.append(s_again)
        s_again.event()
        again = s_again.entries_until(lambda e: e["subject"] == "Late news", 10)
        assert [e["subject"] for e in again] == ["Late news"], again
        print("ok: follow=1 is a text/event-stream: a message sent after it opened arrives as an entry; "
              "another tenant's stream gets nothing; other requests are answered meanwhile; resumes after a cursor")

        # Tracking: the whole path of the delivered message.
        wait(lambda: any(e["decision"] == "delivered" for e in console_json(d, "track", "--id", lunch)), "delivery event")
        status, body = ada("GET", "/api/v1/track?id=" + lunch)
        assert status == 200, (status, body)
        decisions = [e["decision"] for e in body["events"]]
        assert decisions == ["accepted", "delivered"], decisions
        assert body["events"] == console_json(d, "--as", "ada", "track", "--id", lunch), body
        assert body["events"][0]["reason"].startswith("score="), body
        status, body = ada("GET", "/api/v1/track?sender=relay@client.test")
        assert status == 200 and body["events"] == [], body  # the refused recipient is no domain of acme's
        status, body = olga("GET", "/api/v1/track?sender=relay@client.test")
        assert [e["decision"] for e in body["events"]] == ["relay_denied"], body
        status, body = pat("GET", "/api/v1/track?id=" + lunch)
        assert status == 200 and body["events"] == [], body
        for query, field in (("ip=300.1.1.1", "ip"), ("since=1d&until=2d", "since"), ("until=soon", "until"),
                             ("limit=0", "limit")):
            status, body = ada("GET", "/api/v1/track?" + query)
            assert status == 400 and body["field"] == field, (query, status, body)
        print("ok: GET /api/v1/track?id= shows accepted (the verdict) and delivered, as `track --as`; "
              "scoped per role; bad values 400 naming the field")

        # Statistics: exactly what was sent.
        wait(lambda: ada("GET", "/api/v1/stats")[1]["deliveries"]["delivered"] == 3, "3 deliveries in the stats")
        status, s = ada("GET", "/api/v1/stats?period=hour")
        assert status == 200, (status, s)
        assert len(s["buckets"]) == 24 and s["period"] == "hour", s
        assert s["totals"] == {"deliver": 3, "quarantine": 1, "reject": 0, "greylist": 0, "refused": 0}, s["totals"]
        assert s["buckets"][-1]["actions"]["deliver"] == 3, s["buckets"][-1]
        assert s["domains"] == [{"domain": "shop.example", "actions": s["totals"]}], s["domains"]
        assert s["scored_messages"] == 4 and sum(b["count"] for b in s["scores"]) == 4, s["scores"]
        spam_score = [e for e in console_json(d, "feed") if e["id"] == spam][0]["score"]
        top = [b for b in s["scores"] if (b["min"] is None or spam_score >= b["min"]) and
               (b["max"] is None or spam_score < b["max"])]
        assert len(top) == 1 and top[0]["count"] >= 1 and top[0]["min"] >= 5, (spam_score, s["scores"])
        assert s["top_rules"] and s["top_rules"][0]["messages"] >= 1, s["top_rules"]
        assert s["deliveries"] == {"delivered": 3, "deferred": 0, "bounced": 0, "returned": 0}, s["deliveries"]
        assert s["queue"]["messages"] == 0, s["queue"]
        status, s_op = olga("GET", "/api/v1/stats")
        assert s_op["totals"]["refused"] == 1 and s_op["totals"]["deliver"] == 3, s_op["totals"]
        status, s_pat = pat("GET", "/api/v1/stats")
        assert sum(s_pat["totals"].values()) == 0 and s_pat["deliveries"]["delivered"] == 0, s_pat
        status, s_day = ada("GET", "/api/v1/stats?period=day")
        assert status == 200 and len(s_day["buckets"]) == 7 and s_day["totals"]["deliver"] == 3, s_day
        status, body = ada("GET", "/api/v1/stats?period=week")
        assert status == 400 and body["field"] == "period", (status, body)
        assert json.loads(d.console("--as", "ada", "stats", "--json").stdout)["totals"] == s["totals"]
        text = d.console("stats").stdout
        assert "shop.example" in text and "Queue: 0 messages" in text, text
        print("ok: GET /api/v1/stats: 3 delivered, 1 quarantined, 1 refused (operator only), the score histogram "
              "holds the 4 scored messages, the spam in its bucket, the queue empty; `mxguard stats` agrees")
    finally:
        for s in streams:
            s.close()
        if w:
            w.stop()
        d.stop()
        backend.stop()
        d.cleanup()


if __name__ == "__main__":
    main()
