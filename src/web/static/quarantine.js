// The quarantine: search, the table with bulk actions, and the safe preview.
import { session, el, api, say, page, fmtTime, field, clearErrors, showError, busy, hashQuery } from "./ui.js";


function recipientsText(list) {
  if (!list || list.length === 0) return "";
  return list.length === 1 ? list[0] : `${list[0]} (+${list.length - 1})`;
}

async function act(id, action, body) {
  return api("POST", `/api/v1/quarantine/${encodeURIComponent(id)}/${action}`, body || {});
}

const actionWords = {
  release: ["Release", "Released"],
  allow: ["Release and allow sender", "Released (sender allowed)"],
  delete: ["Delete", "Deleted"],
};

// Acts on each id in turn; `leaving`: the page changes next, the notice stays.
async function runAction(kind, ids, leaving = false) {
  const n = ids.length;
  const what = n === 1 ? "this message" : `these ${n} messages`;
  if (kind === "delete" && !window.confirm(`Delete ${what}? This cannot be undone.`)) return false;
  const failures = [];
  for (const id of ids) {
    const r = kind === "delete" ? await act(id, "delete")
      : await act(id, "release", kind === "allow" ? { allow_sender: true } : {});
    if (!r.ok) failures.push(`${id}: ${r.data.error || r.status}`);
  }
  const done = n - failures.length;
  if (failures.length) say(`${actionWords[kind][1]} ${done} of ${n}. ${failures.join("; ")}`, "bad", leaving);
  else say(`${actionWords[kind][1]} ${n === 1 ? "1 message" : `${n} messages`}.`, "ok", leaving);
  return true;
}

async function quarantinePage() {
  const q = hashQuery();
  const form = el("form", { id: "search", class: "search", role: "search" },
    field("search", "Sender, recipient or subject", { value: q.get("search") || "", type: "search" }),
    field("domain", "Domain", { value: q.get("domain") || "" }),
    field("since", "Received since", { type: "date", value: q.get("since") || "" }),
    field("until", "Until", { type: "date", value: q.get("until") || "" }),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Search")),
    el("p", { class: "form-error", role: "alert" }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const i of form.querySelectorAll("input")) if (i.value.trim()) p.set(i.name, i.value.trim());
    const next = `#/quarantine${p.toString() ? `?${p}` : ""}`;
    if (window.location.hash === next) quarantinePage();
    else window.location.hash = next;
  });
  const results = el("div", { id: "results" }, el("p", { class: "muted" }, "Loading…"));
  page("Quarantine", el("p", { class: "muted" },
    "Messages held because they looked like spam. Release what you want delivered."), form, results);

  // The dates are the user's days: since its local midnight, until the end of the day.
  const params = new URLSearchParams();
  for (const k of ["search", "domain", "recipient", "limit", "before"]) if (q.get(k)) params.set(k, q.get(k));
  for (const [k, extra] of [["since", 0], ["until", 1]]) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(q.get(k) || "");
    if (m) params.set(k, `@${Math.floor(new Date(+m[1], +m[2] - 1, +m[3] + extra).getTime() / 1000)}`);
    else if (q.get(k)) params.set(k, q.get(k));
  }
  const r = await api("GET", `/api/v1/quarantine${params.toString() ? `?${params}` : ""}`);
  if (!r.ok) {
    results.replaceChildren();
    return showError(form, r.data);
  }
  const msgs = r.data.messages; // newest first, one page
  // The same search a page further (older) or back at the newest.
  const pageLink = (id, label, before) => {
    const p = new URLSearchParams(q);
    if (before) p.set("before", before);
    else p.delete("before");
    return el("a", { id, class: "button ghost", href: `#/quarantine${p.toString() ? `?${p}` : ""}` }, label);
  };
  const pager = el("nav", { class: "pager", "aria-label": "Pages" },
    q.get("before") ? pageLink("newest", "← Newest messages", "") : null,
    r.data.next ? pageLink("older", "Older messages →", r.data.next) : null);
  if (msgs.length === 0) {
    results.replaceChildren(el("p", { class: "empty" }, q.get("before") ? "No older messages match." : "Nothing is held that matches."), pager);
    return performance.mark("mxguard:quarantine-rendered");
  }

  const selected = new Set();
  const count = el("span", { class: "muted", id: "selected-count" }, "");
  const buttons = Object.entries(actionWords).map(([kind, [label]]) =>
    el("button", { type: "button", class: kind === "delete" ? "small danger" : "small", "data-action": kind, disabled: true,
      onclick: async () => { if (await runAction(kind, [...selected])) quarantinePage(); } }, label));
  const refresh = () => {
    count.textContent = selected.size ? `${selected.size} selected` : "Select messages for bulk actions";
    for (const b of buttons) b.disabled = selected.size === 0;
  };
  const all = el("input", { type: "checkbox", id: "select-all", "aria-label": "Select all" });
  const boxes = [];
  all.addEventListener("change", () => {
    for (const b of boxes) { b.checked = all.checked; b.dispatchEvent(new Event("change")); }
  });
  const rows = msgs.map((m) => {
    const box = el("input", { type: "checkbox", "aria-label": `Select the message ${m.subject || m.id}` });
    box.addEventListener("change", () => { if (box.checked) selected.add(m.id); else selected.delete(m.id); refresh(); });
    boxes.push(box);
    return el("tr", { "data-id": m.id },
      el("td", { class: "check" }, box),
      el("td", { "data-label": "Received", class: "when" }, fmtTime(m.received)),
      el("td", { "data-label": "Score", class: "num" }, Number(m.score).toFixed(1)),
      el("td", { "data-label": "From", class: "clip", title: m.sender || "<>" }, m.sender || "<>"),
      el("td", { "data-label": "To", class: "clip", title: (m.recipients || []).join(", ") }, recipientsText(m.recipients)),
      el("td", { "data-label": "Subject", class: "subject" },
        el("a", { href: `#/quarantine/${encodeURIComponent(m.id)}` }, m.subject || "(no subject)")));
  });
  refresh();
  results.replaceChildren(
    el("div", { class: "bulk", role: "group", "aria-label": "Bulk actions" }, count, buttons),
    el("table", { class: "list", id: "messages" },
      el("thead", {}, el("tr", {}, el("th", { class: "check" }, all),
        ["Received", "Score", "From", "To", "Subject"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)),
    el("p", { class: "muted" }, r.data.next || q.get("before")
      ? `${msgs.length === 1 ? "1 message" : `${msgs.length} messages`} on this page`
      : msgs.length === 1 ? "1 message held" : `${msgs.length} messages held`),
    pager);
  // For timing the page (bench/web_quarantine.sh): the table is in the document.
  performance.mark("mxguard:quarantine-rendered");
}

async function messagePage(id) {
  const r = await api("GET", `/api/v1/quarantine/${encodeURIComponent(id)}`);
  if (!r.ok) return page("Message", el("p", { class: "error" }, r.status === 404
    ? "This message is not in your quarantine: it was released or deleted, or it is not yours to see."
    : r.data.error || "The message cannot be shown."),
    el("p", {}, el("a", { href: "#/quarantine" }, "← Back to the quarantine")));
  const m = r.data;
  const meta = (label, value) => [el("dt", {}, label), el("dd", {}, value)];
  const reasons = (m.reasons || []).map((x) => `${x.rule} (${Number(x.score).toFixed(1)})`).join(", ");
  const doIt = (kind) => async () => {
    if (await runAction(kind, [m.id], true)) window.location.hash = "#/quarantine";
  };
  page(m.subject || "(no subject)",
    el("p", {}, el("a", { href: "#/quarantine" }, "← Back to the quarantine")),
    el("div", { class: "actions", role: "group", "aria-label": "Actions" },
      el("button", { type: "button", id: "release", onclick: doIt("release") }, "Release"),
      el("button", { type: "button", id: "release-allow", class: "secondary", onclick: doIt("allow") }, "Release and allow sender"),
      el("button", { type: "button", id: "delete", class: "danger", onclick: doIt("delete") }, "Delete")),
    el("section", { class: "panel" }, el("h2", {}, "Summary"),
      el("dl", { class: "meta" },
        meta("From", m.sender || "<>"), meta("To", (m.recipients || []).join(", ")), meta("Received", fmtTime(m.received)),
        meta("Score", `${Number(m.score).toFixed(2)} (${m.action})`), meta("Why", reasons || "—"),
        meta("Client", `${m.client_ip} (HELO ${m.helo})`), meta("Size", `${m.size} bytes`)),
      session.me.role !== "user" ? el("p", {}, el("a", { href: `#/track?id=${encodeURIComponent(m.id)}`, id: "track-link" }, "Track this message")) : null),
    el("section", { class: "panel" }, el("h2", {}, "Safe preview"),
      el("p", { class: "muted" }, m.text_from_html ? "Text taken from the HTML part; markup, images and links removed."
        : "Text only; nothing remote is loaded and no attachment is opened."),
      el("details", {}, el("summary", {}, `Header fields (${(m.headers || []).length})`),
        el("dl", { class: "headers" }, (m.headers || []).map((h) => [el("dt", {}, h.name ?? h[0]), el("dd", {}, h.value ?? h[1])]))),
      el("pre", { class: "preview", id: "preview-text" }, m.text || "(no text)"),
      m.truncated ? el("p", { class: "muted" }, "The preview was cut short.") : null),
    el("section", { class: "panel" }, el("h2", {}, `Attachments (${(m.attachments || []).length}, not opened)`),
      (m.attachments || []).length === 0 ? el("p", { class: "muted" }, "None.")
        : el("ul", { class: "plain" }, m.attachments.map((a) => el("li", {},
          el("strong", {}, a.filename || "(no name)"), ` ${a.content_type}, ${a.size} bytes`)))));
}

// #/quarantine, #/quarantine/<id>
export function route(parts) {
  if (parts[1]) return messagePage(parts[1]);
  return quarantinePage();
}
