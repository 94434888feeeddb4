// The live feed: the newest verdicts of the domains the user sees, filtered
// by domain, verdict and text; new ones appear at the top as they arrive
// (EventSource on /api/v1/feed?follow=1, polling if the stream fails).
import { el, api, page, fmtTime, field, clearErrors, showError, hashQuery } from "./ui.js";

const verdicts = ["", "deliver", "quarantine", "reject", "greylist"];
const verdictWords = { deliver: "Delivered", quarantine: "Quarantined", reject: "Rejected", greylist: "Greylisted" };
let live = null;  // { source, timer }: the open stream of the page shown

function stopLive() {
  if (!live) return;
  if (live.source) live.source.close();
  clearTimeout(live.timer);
  live = null;
}
window.addEventListener("hashchange", () => {
  if (!window.location.hash.startsWith("#/feed")) stopLive();
});

function recipientsText(list) {
  if (!list || list.length === 0) return "";
  return list.length === 1 ? list[0] : `${list[0]} (+${list.length - 1})`;
}

function row(e, fresh) {
  const action = e.action || "";
  // What became of it, unless the verdict's word already says so ("Delivered · delivered").
  const word = verdictWords[action] || action;
  const status = e.delivery && e.delivery !== word.toLowerCase() ? ` · ${e.delivery}` : "";
  const rules = (e.reasons || []).map((r) => r.rule).join(", ");
  return el("tr", { "data-id": e.id, class: fresh ? "fresh" : null },
    el("td", { "data-label": "Time", class: "when" }, fmtTime(new Date(e.time_ms).toISOString())),
    el("td", { "data-label": "Verdict" }, el("span", { class: `verdict ${action}` }, word),
      el("span", { class: "muted" }, status)),
    el("td", { "data-label": "Score", class: "num", title: rules || null }, Number(e.score || 0).toFixed(1)),
    el("td", { "data-label": "From", class: "clip", title: e.sender || "<>" }, e.sender || "<>"),
    el("td", { "data-label": "To", class: "clip", title: (e.recipients || []).join(", ") }, recipientsText(e.recipients)),
    el("td", { "data-label": "Subject", class: "subject" }, e.subject || "(no subject)"),
    el("td", { "data-label": "Path" },
      el("a", { href: `#/track?id=${encodeURIComponent(e.id)}`, "aria-label": `Track ${e.subject || e.id}` }, "Track")));
}

function filterParams(q) {
  const p = new URLSearchParams();
  for (const k of ["domain", "action", "text"]) if (q.get(k)) p.set(k, q.get(k));
  return p;
}

async function feedPage() {
  stopLive();
  const q = hashQuery();
  const form = el("form", { id: "feed-filter", class: "search feed-filter", role: "search" },
    field("text", "Sender, recipient, subject or id", { value: q.get("text") || "", type: "search" }),
    field("domain", "Domain", { value: q.get("domain") || "" }),
    field("action", "Verdict", { choices: verdicts, value: q.get("action") || "" }),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Filter")),
    el("p", { class: "form-error", role: "alert" }));
  form.querySelector("#f-action").firstChild.textContent = "Any";
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const i of form.querySelectorAll("input, select")) if (i.value.trim()) p.set(i.name, i.value.trim());
    const next = `#/feed${p.toString() ? `?${p}` : ""}`;
    if (window.location.hash === next) feedPage();
    else window.location.hash = next;
  });
  const state = el("p", { id: "live-state", class: "muted live", role: "status", "aria-live": "polite" }, "Loading…");
  const body = el("tbody", {});
  const table = el("table", { class: "list", id: "feed" },
    el("thead", {}, el("tr", {}, ["Time", "Verdict", "Score", "From", "To", "Subject", "Path"].map((h) => el("th", { scope: "col" }, h)))),
    body);
  const empty = el("p", { class: "empty", id: "feed-empty" }, "No verdicts yet that match. New mail shows up here as it arrives.");
  page("Live feed", el("p", { class: "muted" }, "Every message your domains received and what was decided, newest first."),
    form, state, table, empty);

  const params = filterParams(q);
  params.set("limit", "100");
  const r = await api("GET", `/api/v1/feed?${params}`);
  if (!r.ok) {
    clearErrors(form);
    showError(form, r.data);
    state.textContent = "";
    table.hidden = true;
    empty.hidden = true;
    return;
  }
  const show = (entries, fresh) => {
    for (const e of entries) body.prepend(row(e, fresh));
    table.hidden = body.children.length === 0;
    empty.hidden = body.children.length > 0;
  };
  show(r.data.entries, false);
  const mine = { source: null, timer: 0, cursor: r.data.cursor };
  live = mine;
  const filters = filterParams(q);
  const poll = async () => {
    if (live !== mine) return;
    const p = new URLSearchParams(filters);
    p.set("after", mine.cursor);
    const more = await api("GET", `/api/v1/feed?${p}`);
    if (live !== mine) return;
    if (more.ok) {
      mine.cursor = more.data.cursor;
      show(more.data.entries, true);
      state.textContent = "Live: checking for new mail every 5 seconds.";
    } else {
      state.textContent = "Live updates paused: the server could not be reached.";
    }
    mine.timer = setTimeout(poll, 5000);
  };
  if (!window.EventSource) {
    poll();
    return;
  }
  const p = new URLSearchParams(filters);
  p.set("follow", "1");
  p.set("after", mine.cursor);
  const source = new EventSource(`/api/v1/feed?${p}`);
  mine.source = source;
  source.addEventListener("open", () => { state.textContent = "Live: new mail appears here as it arrives."; });
  source.addEventListener("entries", (ev) => {
    const data = JSON.parse(ev.data);
    mine.cursor = data.cursor;
    show(data.entries, true);
  });
  source.addEventListener("error", () => {
    // The browser reconnects by itself (from the last event's id); when it
    // gives up (the session ended, the server refused), poll instead.
    if (source.readyState === EventSource.CLOSED && live === mine) {
      mine.source = null;
      poll();
    } else {
      state.textContent = "Live: reconnecting…";
    }
  });
}

// #/feed?domain=&action=&text=
export function route() {
  return feedPage();
}
