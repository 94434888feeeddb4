#!/usr/bin/python3
"""Quarantine search latency and quarantine page render time (issue 17).

Fills a real quarantine (the spools' LMDB, written by tests/tools/quarantine-fill
through the store API the engine's storage writer uses), starts the real
mxguard-web, and measures:
  * GET /api/v1/quarantine latency (p50/p99) for several kinds of search, over
    HTTPS with one keep-alive connection, as a customer admin;
  * the time headless Chromium takes from navigation start to a quarantine
    table of 1,000 rows (the page's performance mark "mxguard:quarantine-rendered").
It checks the answers too (page sizes, no duplicates across pages, the rare
search finds exactly the rare messages), so the smoke mode is a real test.

Targets: search p99 < 50 ms, page < 1 s. Exit status: 0 when all is correct
(and, without --smoke, the targets are met), 1 otherwise, 77 when Chromium
or selenium is missing.

  /usr/bin/python3 bench/web_quarantine.py [--count 100000] [--reps 200] [--smoke]
"""
import argparse
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import mxg  # noqa: E402
from test_web import Web, add_user  # noqa: E402

FILL = os.environ.get("QUARANTINE_FILL_BIN", os.path.join(mxg.ROOT, "build/tests/tools/quarantine-fill"))
SEARCH_P99_MS = 50.0
PAGE_S = 1.0


class KeepAlive:
    """One HTTPS connection for every request, logged in as `user`."""

    def __init__(self, w, user, password):
        self.conn = http.client.HTTPSConnection("127.0.0.1", w.port, context=w.ctx, timeout=60)
        self.origin = "https://127.0.0.1:%d" % w.port
        status, body, r = self.call("POST", "/api/v1/session", {"user": user, "password": password})
        assert status == 200, (status, body)
        self.cookie = r.getheader("Set-Cookie").split(";")[0]
        self.csrf = body["csrf_token"]

    def call(self, method, path, body=None):
        h = {"Origin": self.origin}
        if getattr(self, "cookie", None):
            h["Cookie"] = self.cookie
            h["X-CSRF-Token"] = self.csrf
        data = None
        if body is not None:
            data = json.dumps(body)
            h["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=h)
        r = self.conn.getresponse()
        raw = r.read()
        assert not r.will_close, "the server closed the keep-alive connection"
        return r.status, json.loads(raw), r

    def get(self, path):
        status, body, _ = self.call("GET", path)
        assert status == 200, (path, status, body)
        return body


def percentile(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def measure(client, path, reps):
    for _ in range(min(5, reps)):
        client.get(path)
    times = []
    deadline = time.monotonic() + 120
    for _ in range(reps):
        t = time.perf_counter()
        body = client.get(path)
        times.append((time.perf_counter() - t) * 1000)
        assert time.monotonic() < deadline, "measuring %s took too long" % path
    return times, body


def check_pages(client, query, pages):
    """Follows `next` for `pages` pages: each full, newest first, no id twice."""
    seen, last, before = set(), None, ""
    for _ in range(pages):
        body = client.get("/api/v1/quarantine?" + query + ("&before=" + urllib.parse.quote(before) if before else ""))
        for m in body["messages"]:
            assert m["id"] not in seen, ("twice", m["id"])
            seen.add(m["id"])
            key = (m["received"], m["id"])
            assert last is None or key <= last, ("order", last, key)
            last = key
        if not body["next"]:
            break
        before = body["next"]
    return len(seen), before


def render_time(w, user, password, rows, runs):
    from selenium.webdriver.common.by import By
    import test_dashboard as td
    b = td.Browser("https://127.0.0.1:%d" % w.port, td.screenshot_dir())
    try:
        td.login(b, user, password)
        out = []
        for _ in range(runs):
            b.get("/app.html#/quarantine?limit=%d" % rows)
            b.wait(lambda drv: drv.execute_script(
                "return performance.getEntriesByName('mxguard:quarantine-rendered').length") > 0,
                timeout=60, what="the rendered mark")
            ms = b.drv.execute_script(
                "return performance.getEntriesByName('mxguard:quarantine-rendered')[0].startTime")
            n = len(b.drv.find_elements(By.CSS_SELECTOR, "#messages tbody tr"))
            assert n == rows, ("rows", n, rows)
            out.append(ms / 1000.0)
        os.makedirs(b.shots, exist_ok=True)
        b.shot("bench-quarantine-%d-rows" % rows)
        return out
    finally:
        b.quit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--render-runs", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="2,000 messages, few repetitions, targets not enforced")
    ap.add_argument("--no-browser", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.count, a.reps, a.render_runs = 2000, 20, 1
    try:
        import selenium  # noqa: F401
        have_browser = os.path.exists("/usr/bin/chromium") and os.path.exists("/usr/bin/chromedriver")
    except ImportError:
        have_browser = False
    if not have_browser and not a.no_browser:
        print("SKIP: needs Debian's chromium, chromium-driver and python3-selenium (or --no-browser)")
        return 77

    d = mxg.Daemon(domains=("bench.test",))
    w = None
    ok = True
    try:
        add_user(d, "ada", "ada-password-1", "--role", "customer-admin", "--customer", "acme")
        t = time.monotonic()
        p = subprocess.run([FILL, "--state-dir", d.state, "--count", str(a.count), "--shards", "2",
                            "--domain", "bench.test"], capture_output=True, text=True, timeout=1800)
        assert p.returncode == 0, p.stderr
        fill = json.loads(p.stdout)
        print("filled: %d held messages in %d spools in %.1f s (%s)" % (fill["count"], fill["shards"],
                                                                       time.monotonic() - t, FILL))
        w = Web(d)
        c = KeepAlive(w, "ada", "ada-password-1")

        # Correctness first: the answers the timings are for.
        first = c.get("/api/v1/quarantine")
        assert len(first["messages"]) == 100 and first["next"], (len(first["messages"]), first["next"])
        n, _ = check_pages(c, "limit=250", 6)
        assert n == min(a.count, 1500), n
        rare = c.get("/api/v1/quarantine?limit=1000&search=zanzibar")
        assert len(rare["messages"]) == fill["rare"] and not rare["next"], (len(rare["messages"]), fill["rare"])
        assert all("Zanzibar" in m["subject"] for m in rare["messages"])
        rare_sender = c.get("/api/v1/quarantine?limit=1000&search=RARE.SENDER%40tradewinds")
        assert [m["id"] for m in rare_sender["messages"]] == [m["id"] for m in rare["messages"]]
        n, _ = check_pages(c, "limit=7&search=zanzibar", 1000)
        assert n == fill["rare"], (n, fill["rare"])
        busiest = fill["busiest"]
        mine = c.get("/api/v1/quarantine?limit=1000&recipient=" + urllib.parse.quote(busiest))
        assert all(busiest in m["recipients"] for m in mine["messages"])
        n, _ = check_pages(c, "limit=13&recipient=" + urllib.parse.quote(busiest), 1000)
        assert n == fill["busiest_count"], (n, fill["busiest_count"])
        status, bad, _ = c.call("GET", "/api/v1/quarantine?before=nonsense")
        assert status == 400 and bad["field"] == "before", (status, bad)
        print("ok: pages of 100/250/7/13 without duplicates or gaps; the rare subject and sender searches "
              "find exactly the %d rare messages; recipient pages find all %d of %s; a bad cursor is 400 'before'"
              % (fill["rare"], fill["busiest_count"], busiest))

        # A window of three days in the middle, and a page deep into the list.
        mid = (fill["first_ms"] + fill["last_ms"]) // 2 // 1000
        _, tenth = check_pages(c, "limit=100", 10)
        queries = [
            ("first page (100 newest)", "/api/v1/quarantine"),
            ("by recipient", "/api/v1/quarantine?recipient=" + urllib.parse.quote(busiest)),
            ("sender text, common (billing)", "/api/v1/quarantine?search=billing"),
            ("sender text, rare (1 in 1000)", "/api/v1/quarantine?search=rare.sender"),
            ("subject text, common (invoice)", "/api/v1/quarantine?search=invoice"),
            ("subject text, rare (zanzibar)", "/api/v1/quarantine?search=zanzibar"),
            ("subject text, no match", "/api/v1/quarantine?search=no-such-words-anywhere"),
            ("date range (3 days)", "/api/v1/quarantine?since=@%d&until=@%d" % (mid, mid + 3 * 86400)),
            ("page 11 (before=cursor)", "/api/v1/quarantine?before=" + urllib.parse.quote(tenth)),
        ]
        # The page benchmark's own call: 440 kB of JSON; timed, not held to the search target.
        big = ("1000 per page (the page's call)", "/api/v1/quarantine?limit=1000")
        print("\nGET /api/v1/quarantine over %d held messages, %d requests each (one keep-alive HTTPS connection):"
              % (a.count, a.reps))
        print("  %-34s %8s %8s %8s %6s" % ("query", "p50 ms", "p99 ms", "max ms", "rows"))
        worst = 0.0
        for name, path in queries:
            times, body = measure(c, path, a.reps)
            p99 = percentile(times, 99)
            worst = max(worst, p99)
            print("  %-34s %8.2f %8.2f %8.2f %6d%s" % (name, statistics.median(times), p99, max(times),
                                                       len(body["messages"]),
                                                       "" if p99 < SEARCH_P99_MS else "  MISSES the target"))
        times, body = measure(c, big[1], max(10, a.reps // 4))
        big_p50 = statistics.median(times)
        print("  %-34s %8.2f %8.2f %8.2f %6d  (not a search target)" % (big[0], big_p50, percentile(times, 99),
                                                                         max(times), len(body["messages"])))
        # Sent with Nagle's algorithm on, this took 200-300 ms (each TLS record waited for a delayed ACK).
        assert big_p50 < 150, "a 1000-row answer took %.0f ms (p50): is TCP_NODELAY off?" % big_p50
        search_ok = worst < SEARCH_P99_MS
        print("search p99 worst: %.2f ms (target < %.0f ms): %s" % (worst, SEARCH_P99_MS,
                                                                     "met" if search_ok else "NOT met"))
        page_ok = True
        if not a.no_browser:
            rows = min(1000, a.count)
            secs = render_time(w, "ada", "ada-password-1", rows, a.render_runs)
            page_ok = max(secs) < PAGE_S
            print("quarantine page with %d rows in headless Chromium, navigation start to table: "
                  "median %.3f s, max %.3f s over %d loads (target < %.1f s): %s"
                  % (rows, statistics.median(secs), max(secs), len(secs), PAGE_S, "met" if page_ok else "NOT met"))
        if not a.smoke:
            ok = search_ok and page_ok
    finally:
        if w:
            w.stop()
        d.cleanup()
    print("web_quarantine: %s" % ("ok" if ok else "a target was missed"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
