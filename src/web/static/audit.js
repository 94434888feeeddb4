// The audit log: who changed what, newest first, with a compact
// before/after of the fields that changed. The API decides which entries
// the viewer may read (their customer's, their domain's, or all).
import { el, api, page, fmtTime, field, showError, hashQuery } from "./ui.js";

// "YYYY-MM-DD" as the start of that local day (end: the start of the next).
function dayBound(value, end) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || "");
  if (!m) return value;
  return `@${Math.floor(new Date(+m[1], +m[2] - 1, +m[3] + (end ? 1 : 0)).getTime() / 1000)}`;
}

function show(v) {
  if (v === undefined || v === null) return "—";
  if (Array.isArray(v)) return v.length ? v.join(", ") : "(none)";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// One line per field: "key: old → new". A created or removed object lists
// its non-empty fields; a long list folds away behind its count.
function diff(action, before, after) {
  const b = before && typeof before === "object" ? before : {};
  const a = after && typeof after === "object" ? after : {};
  const empty = (v) => v === undefined || v === null || v === "" || (Array.isArray(v) && v.length === 0);
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
  const lines = [];
  for (const k of keys) {
    if (JSON.stringify(b[k]) === JSON.stringify(a[k])) continue;
    if (!before) { if (!empty(a[k])) lines.push(el("li", {}, `${k}: ${show(a[k])}`)); }
    else if (!after) { if (!empty(b[k])) lines.push(el("li", {}, `${k}: ${show(b[k])}`)); }
    else lines.push(el("li", {}, `${k}: `, el("del", {}, show(b[k])), " → ", el("ins", {}, show(a[k]))));
  }
  const kind = action.endsWith(".add") ? "created" : action.endsWith(".remove") ? "removed" : null;
  if (lines.length === 0) return el("span", { class: "muted" }, kind || "—");
  if (lines.length <= 8) return el("div", {}, kind ? el("span", { class: "muted" }, kind) : null, el("ul", { class: "diff" }, lines));
  return el("details", {}, el("summary", {}, `${kind || "changed"}: ${lines.length} fields`), el("ul", { class: "diff" }, lines));
}

async function auditPage() {
  const q = hashQuery();
  const form = el("form", { id: "audit-filter", class: "search", role: "search" },
    field("since", "From", { type: "date", value: q.get("since") || "" }),
    field("until", "Until", { type: "date", value: q.get("until") || "" }),
    field("limit", "Show at most", { type: "number", value: q.get("limit") || "200", inputmode: "numeric" }),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Show")),
    el("p", { class: "form-error", role: "alert" }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const i of form.querySelectorAll("input")) if (i.value.trim()) p.set(i.name, i.value.trim());
    const next = `#/audit${p.toString() ? `?${p}` : ""}`;
    if (window.location.hash === next) auditPage();
    else window.location.hash = next;
  });
  const results = el("div", { id: "audit-results" }, el("p", { class: "muted" }, "Loading…"));
  page("Audit log", el("p", { class: "muted" }, "Every change made in the dashboard or at the console, newest first."),
    form, results);
  const params = new URLSearchParams();
  if (q.get("since")) params.set("since", dayBound(q.get("since"), false));
  if (q.get("until")) params.set("until", dayBound(q.get("until"), true));
  params.set("limit", q.get("limit") || "200");
  const r = await api("GET", `/api/v1/audit?${params}`);
  if (!r.ok) {
    results.replaceChildren();
    return showError(form, r.data);
  }
  if (r.data.entries.length === 0) return results.replaceChildren(el("p", { class: "empty" }, "No changes in this period."));
  const rows = r.data.entries.map((e) => el("tr", {},
    el("td", { "data-label": "Time", class: "when" }, fmtTime(e.time)),
    el("td", { "data-label": "Who", class: "clip", title: e.principal }, e.principal),
    el("td", { "data-label": "Action" }, el("code", {}, e.action)),
    el("td", { "data-label": "Object", class: "addresses" }, e.object),
    el("td", { "data-label": "Change" }, diff(e.action, e.before, e.after))));
  results.replaceChildren(
    el("table", { class: "list", id: "audit" },
      el("thead", {}, el("tr", {}, ["Time", "Who", "Action", "Object", "Change"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)),
    el("p", { class: "muted" }, r.data.entries.length === 1 ? "1 entry" : `${r.data.entries.length} entries`));
}

// #/audit
export function route() {
  return auditPage();
}
