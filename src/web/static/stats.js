// Statistics: messages per hour (24 h) or day by verdict as stacked bars,
// per domain, the top rules, the spam score histogram, the queue and the
// delivery failures. Charts are inline SVG built from the API's numbers;
// each has the same numbers as a table beside it for screen readers.
import { el, api, page, fmtTime, hashQuery } from "./ui.js";

const NS = "http://www.w3.org/2000/svg";
const actions = ["deliver", "quarantine", "reject", "greylist", "refused"];
const actionWords = { deliver: "Delivered", quarantine: "Quarantined", reject: "Rejected", greylist: "Greylisted",
  refused: "Refused in SMTP" };
const failureWords = { "4xx": "Temporary (4xx reply)", "5xx": "Permanent (5xx reply)", no_reply: "No reply (connection, TLS, route)",
  returned: "Returned to sender" };

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  for (const c of children.flat()) if (c) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function bucketLabel(startMs, period) {
  const d = new Date(startMs);
  return period === "hour" ? d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

// The y axis' top: a round number at or above the largest value.
function niceMax(v) {
  if (v <= 4) return 4;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function legend() {
  return el("ul", { class: "legend" }, actions.map((a) => el("li", {}, el("span", { class: `swatch a-${a}` }), actionWords[a])));
}

function stackedBars(s) {
  const W = 720, H = 240, left = 36, bottom = 28, top = 10;
  const n = s.buckets.length;
  const totals = s.buckets.map((b) => actions.reduce((t, a) => t + b.actions[a], 0));
  const max = niceMax(Math.max(0, ...totals));
  const bw = (W - left - 8) / n;
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => svg("g", { class: "grid" },
    svg("line", { x1: left, x2: W - 4, y1: y(max * f), y2: y(max * f) }),
    svg("text", { x: left - 6, y: y(max * f) + 4, "text-anchor": "end" }, String(Math.round(max * f)))));
  const bars = s.buckets.map((b, i) => {
    let acc = 0;
    const label = `${bucketLabel(b.start_ms, s.period)}: ${totals[i]} messages` +
      actions.filter((a) => b.actions[a]).map((a) => `, ${b.actions[a]} ${actionWords[a].toLowerCase()}`).join("");
    const rects = actions.filter((a) => b.actions[a] > 0).map((a) => {
      const h = y(acc) - y(acc + b.actions[a]);
      const r = svg("rect", { class: `a-${a}`, x: left + i * bw + 1, width: Math.max(1, bw - 2), y: y(acc + b.actions[a]), height: h });
      acc += b.actions[a];
      return r;
    });
    const every = s.period === "hour" ? 3 : 1;
    return svg("g", { class: "bar", role: "img", "aria-label": label },
      svg("title", {}, label), rects,
      i % every === 0 ? svg("text", { class: "tick", x: left + i * bw + bw / 2, y: H - 8, "text-anchor": "middle" },
        bucketLabel(b.start_ms, s.period)) : null);
  });
  const sum = actions.map((a) => `${s.totals[a]} ${actionWords[a].toLowerCase()}`).join(", ");
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "group",
    "aria-label": `Messages per ${s.period} by verdict: ${sum}` }, grid, bars);
}

function numbersTable(caption, head, rows, id) {
  return el("table", { class: "list numbers", id },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => i === 0 ? el("th", { scope: "row" }, c) : el("td", { class: "num", "data-label": head[i] }, String(c)))))));
}

function histogram(s) {
  const W = 720, H = 200, left = 36, bottom = 28, top = 10;
  const labels = s.scores.map((b) => (b.min === null ? `< ${b.max}` : b.max === null ? `≥ ${b.min}` : `${b.min}–${b.max}`));
  const max = niceMax(Math.max(0, ...s.scores.map((b) => b.count)));
  const bw = (W - left - 8) / s.scores.length;
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const bars = s.scores.map((b, i) => {
    const label = `score ${labels[i]}: ${b.count} messages`;
    return svg("g", { class: "bar", role: "img", "aria-label": label }, svg("title", {}, label),
      svg("rect", { class: b.min !== null && b.min >= 5 ? "score-high" : "score-low", x: left + i * bw + 2,
        width: bw - 4, y: y(b.count), height: y(0) - y(b.count) }),
      b.count ? svg("text", { class: "value", x: left + i * bw + bw / 2, y: y(b.count) - 3, "text-anchor": "middle" }, String(b.count)) : null,
      svg("text", { class: "tick", x: left + i * bw + bw / 2, y: H - 8, "text-anchor": "middle" }, labels[i]));
  });
  const grid = [0, 0.5, 1].map((f) => svg("g", { class: "grid" },
    svg("line", { x1: left, x2: W - 4, y1: y(max * f), y2: y(max * f) }),
    svg("text", { x: left - 6, y: y(max * f) + 4, "text-anchor": "end" }, String(Math.round(max * f)))));
  return {
    chart: svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "group",
      "aria-label": `Spam score histogram of ${s.scored_messages} messages` }, grid, bars),
    table: numbersTable("Messages per score", ["Score", "Messages"], s.scores.map((b, i) => [labels[i], b.count]), "score-numbers"),
  };
}

function hbars(rows, id, caption) {
  const max = Math.max(1, ...rows.map((r) => r[1]));
  return el("div", { class: "hbars", id, role: "list", "aria-label": caption }, rows.map(([label, n]) =>
    el("div", { class: "hbar", role: "listitem", "aria-label": `${label}: ${n}` },
      el("span", { class: "hbar-label" }, label),
      svg("svg", { viewBox: "0 0 100 10", preserveAspectRatio: "none", class: "hbar-track", "aria-hidden": "true" },
        svg("rect", { x: 0, y: 0, width: (100 * n) / max, height: 10 })),
      el("span", { class: "num" }, String(n)))));
}

async function statsPage() {
  const q = hashQuery();
  const period = q.get("period") === "day" ? "day" : "hour";
  const switcher = el("nav", { class: "period", "aria-label": "Period" },
    el("a", { href: "#/stats?period=hour", class: "button ghost small", "aria-current": period === "hour" ? "page" : null }, "Last 24 hours"),
    el("a", { href: "#/stats?period=day", class: "button ghost small", "aria-current": period === "day" ? "page" : null }, "Per day"));
  const body = el("div", { id: "stats" }, el("p", { class: "muted" }, "Loading…"));
  page("Statistics", switcher, body);
  const r = await api("GET", `/api/v1/stats?period=${period}`);
  if (!r.ok) return body.replaceChildren(el("p", { class: "error" }, r.data.error || "The statistics cannot be shown."));
  const s = r.data;
  const hist = histogram(s);
  const totalMessages = actions.reduce((t, a) => t + s.totals[a], 0);
  body.replaceChildren(
    el("section", { class: "panel", id: "chart-actions" },
      el("h2", {}, period === "hour" ? "Messages per hour, last 24 hours" : `Messages per day, last ${s.buckets.length} days`),
      legend(), stackedBars(s),
      numbersTable(`${totalMessages} messages by verdict`, ["Verdict", "Messages"],
        actions.map((a) => [actionWords[a], s.totals[a]]), "action-numbers")),
    el("div", { class: "stat-cards" },
      el("section", { class: "panel stat", id: "queue" }, el("h2", {}, "Delivery queue"),
        el("p", { class: "big" }, String(s.queue.messages)),
        el("p", { class: "muted" }, s.queue.messages === 1 ? "message waiting" : "messages waiting",
          s.queue.oldest ? ` · oldest from ${fmtTime(s.queue.oldest)}` : "")),
      el("section", { class: "panel stat", id: "deliveries" }, el("h2", {}, "Delivery attempts"),
        hbars([["Delivered", s.deliveries.delivered], ["Deferred", s.deliveries.deferred],
          ["Bounced", s.deliveries.bounced], ["Returned", s.deliveries.returned]], "delivery-bars", "Delivery results"))),
    el("section", { class: "panel", id: "failures" }, el("h2", {}, "Delivery failures"),
      hbars(Object.entries(failureWords).map(([k, w]) => [w, s.delivery_failures[k]]), "failure-bars", "Delivery failures by class")),
    el("section", { class: "panel", id: "chart-scores" }, el("h2", {}, "Spam scores"),
      el("p", { class: "muted" }, `${s.scored_messages} messages scored. Higher is more likely spam.`), hist.chart, hist.table),
    el("section", { class: "panel", id: "rules" }, el("h2", {}, "Top rules"),
      s.top_rules.length === 0 ? el("p", { class: "muted" }, "No rule matched in this period.")
        : numbersTable("Rules by the messages they matched", ["Rule", "Messages"], s.top_rules.map((x) => [x.rule, x.messages]), "rule-numbers")),
    el("section", { class: "panel", id: "per-domain" }, el("h2", {}, "Per domain"),
      s.domains.length === 0 ? el("p", { class: "muted" }, "No mail in this period.")
        : numbersTable("Messages per domain by verdict", ["Domain", ...actions.map((a) => actionWords[a])],
          s.domains.map((d) => [d.domain || "(no recipient)", ...actions.map((a) => d.actions[a])]), "domain-numbers")));
}

// #/stats?period=hour|day
export function route() {
  return statsPage();
}
