// Message tracking: search the decision events by sender, recipient, client,
// message id, reference id and time; each message (or session) is shown as
// a timeline from its arrival to its delivery.
import { el, api, page, fmtTime, field, clearErrors, showError, hashQuery } from "./ui.js";

const fields = [
  ["sender", "Sender", "Envelope sender, the exact address"],
  ["recipient", "Recipient", "Envelope recipient, the exact address"],
  ["ip", "Client IP", ""],
  ["id", "Message id", "Our queue id, e.g. from the feed"],
  ["ref", "Reference id", "From a refusal's reply: the whole session"],
  ["since", "Since", "2026-05-01, 2h, 7d"],
  ["until", "Until", ""],
];

const decisionWords = {
  accepted: "Accepted", quarantined: "Quarantined", rejected: "Rejected", greylisted: "Greylisted",
  delivered: "Delivered", deferred: "Deferred", bounced: "Bounced", returned: "Returned to sender",
  released: "Released", deleted: "Deleted", relay_denied: "Relay denied", unknown_recipient: "Unknown recipient",
};

function tone(decision) {
  if (["accepted", "delivered", "released"].includes(decision)) return "good";
  if (["deferred", "greylisted", "quarantined"].includes(decision)) return "wait";
  return "bad";
}

// One group per message id, else per refusal reference, else per session.
function groupsOf(events) {
  const groups = new Map();
  for (const e of events) {
    const key = e.id ? `id:${e.id}` : e.ref ? `ref:${e.ref}` : `session:${e.shard}:${e.session}`;
    if (!groups.has(key)) groups.set(key, { key, events: [] });
    groups.get(key).events.push(e);
  }
  return [...groups.values()];
}

function timeline(g) {
  const first = g.events[0];
  const title = first.id ? `Message ${first.id}` : first.ref ? `Refused, reference ${first.ref}` : `Connection from ${first.client || "?"}`;
  const last = g.events[g.events.length - 1];
  return el("section", { class: "panel track-group", "data-key": g.key },
    el("h2", {}, title),
    el("p", { class: "muted" }, `${first.sender ? `From ${first.sender}` : "From <>"} · client ${first.client || "-"}`,
      ` · now: ${decisionWords[last.decision] || last.decision}`),
    el("ol", { class: "timeline" }, g.events.map((e) => el("li", { class: `step ${tone(e.decision)}`, "data-decision": e.decision },
      el("span", { class: "when" }, fmtTime(e.time)),
      el("strong", {}, decisionWords[e.decision] || e.decision),
      e.code ? el("span", { class: "muted" }, ` ${e.code}`) : null,
      (e.recipients || []).length ? el("span", { class: "rcpts" }, ` → ${e.recipients.join(", ")}`) : null,
      e.reason ? el("div", { class: "reason" }, e.reason) : null,
      e.decision === "released" && e.ref ? el("div", {}, "Copy queued as ",
        el("a", { href: `#/track?id=${encodeURIComponent(e.ref)}` }, e.ref)) : null))));
}

async function trackPage() {
  const q = hashQuery();
  const form = el("form", { id: "track-search", class: "track-form", role: "search" },
    el("div", { class: "grid3" }, fields.map(([name, label, hint]) =>
      field(name, label, { value: q.get(name) || "", hint: hint || undefined, type: name === "sender" || name === "recipient" ? "email" : "text" }))),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Search")),
    el("p", { class: "form-error", role: "alert" }));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const i of form.querySelectorAll("input")) if (i.value.trim()) p.set(i.name, i.value.trim());
    const next = `#/track${p.toString() ? `?${p}` : ""}`;
    if (window.location.hash === next) trackPage();
    else window.location.hash = next;
  });
  form.noValidate = true;
  const results = el("div", { id: "track-results" });
  page("Message tracking", el("p", { class: "muted" },
    "Why did a message not arrive? Every decision on your mail: refusals, verdicts, delivery attempts, quarantine actions."),
  form, results);
  const params = new URLSearchParams();
  for (const [name] of fields) if (q.get(name)) params.set(name, q.get(name));
  if ([...params.keys()].length === 0) {
    results.replaceChildren(el("p", { class: "empty" }, "Search by sender, recipient, client, id or time to see what happened."));
    return;
  }
  results.replaceChildren(el("p", { class: "muted" }, "Searching…"));
  const r = await api("GET", `/api/v1/track?${params}`);
  clearErrors(form);
  if (!r.ok) {
    results.replaceChildren();
    return showError(form, r.data);
  }
  const groups = groupsOf(r.data.events).reverse();  // the newest first
  if (groups.length === 0) return results.replaceChildren(el("p", { class: "empty" }, "Nothing was recorded that matches."));
  results.replaceChildren(
    el("p", { class: "muted" }, `${r.data.events.length} ${r.data.events.length === 1 ? "event" : "events"} in ${groups.length} ${groups.length === 1 ? "timeline" : "timelines"}`,
      r.data.older ? ` (${r.data.older} older not shown: narrow the search)` : ""),
    ...groups.map(timeline));
}

// #/track?sender=&recipient=&ip=&id=&ref=&since=&until=
export function route() {
  return trackPage();
}
