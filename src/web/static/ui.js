// The dashboard's plumbing, shared by every page module: elements, the API
// call, notices, page frames and form fields. Every piece of text from the
// server (domain names, subjects, senders, message text) goes into the page
// through text nodes: el() never parses HTML, and nothing here assigns innerHTML.

const main = document.getElementById("main");
const notice = document.getElementById("notice");
// GET /api/v1/me: user, role, customer, domain, csrf_token (set by app.js).
export const session = { me: null };

// ---- plumbing -------------------------------------------------------------

// el("p", {class: "x", onclick: f}, "text", child...): an element; strings
// become text nodes, attributes are set as attributes (never as markup).
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.me) headers["X-CSRF-Token"] = session.me.csrf_token;
  let r;
  try {
    r = await fetch(path, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { ok: false, status: 0, data: { error: "The server could not be reached." } };
  }
  const data = await r.json().catch(() => ({}));
  if (r.status === 401) {
    window.location.replace("/");
  }
  return { ok: r.ok, status: r.status, data };
}

// A notice for the page; `keep` keeps it over the next page change (said
// just before navigating, e.g. "Released 1 message" and back to the list).
export function say(text, kind = "ok", keep = false) {
  notice.textContent = text;
  notice.className = `notice ${kind}`;
  notice.hidden = !text;
  notice.dataset.keep = keep ? "1" : "";
}

// Replaces the page's content; the heading takes the focus so keyboard and
// screen-reader users land on the new page.
export function page(title, ...content) {
  document.title = `${title} · MxGuard`;
  const h1 = el("h1", { tabindex: "-1" }, title);
  main.replaceChildren(h1, ...content.filter((c) => c !== null && c !== undefined && c !== false));
  h1.focus();
}

export function badge(status) {
  const words = { active: "Active", pending_verification: "Pending verification", suspended: "Suspended" };
  return el("span", { class: `badge ${status}` }, words[status] || status);
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// A form field: label, input (or select), and the place its error goes.
export function field(name, label, opts = {}) {
  const id = `f-${name}`;
  let input;
  if (opts.choices) {
    input = el("select", { id, name }, opts.choices.map((c) => el("option", { value: c }, c)));
    if (opts.value !== undefined) input.value = String(opts.value);
  } else {
    input = el("input", {
      id, name, type: opts.type || "text", value: opts.value ?? "", placeholder: opts.placeholder,
      autocomplete: opts.autocomplete || "off", inputmode: opts.inputmode, required: opts.required,
      "aria-describedby": `${id}-error${opts.hint ? ` ${id}-hint` : ""}`, step: opts.step,
    });
  }
  const wrap = el("div", { class: "field" }, el("label", { for: id }, label), input,
    opts.hint ? el("p", { class: "hint", id: `${id}-hint` }, opts.hint) : null,
    el("p", { class: "field-error", id: `${id}-error`, role: "alert" }));
  return wrap;
}

export function clearErrors(form) {
  for (const p of form.querySelectorAll(".field-error, .form-error")) p.textContent = "";
  for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
}

// Shows an API error next to the field it names, else at the form's end.
export function showError(form, data) {
  const message = data.error || "Something went wrong.";
  const input = data.field ? form.querySelector(`[name="${CSS.escape(data.field)}"]`) : null;
  if (input) {
    input.setAttribute("aria-invalid", "true");
    form.querySelector(`#f-${CSS.escape(data.field)}-error`).textContent = message;
    input.focus();
  } else {
    form.querySelector(".form-error").textContent = message;
  }
}

export function busy(button, on) {
  button.disabled = on;
  button.setAttribute("aria-busy", on ? "true" : "false");
}


export function copyButton(text, label) {
  const b = el("button", { type: "button", class: "small ghost", "aria-label": label }, "Copy");
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied";
    } catch {
      // No clipboard (plain HTTP, old browser): select the value for Ctrl+C.
      const code = b.parentElement.querySelector("code");
      const range = document.createRange();
      range.selectNodeContents(code);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      b.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => { b.textContent = "Copy"; }, 2500);
  });
  return b;
}

export function hashQuery() {
  const h = window.location.hash;
  const q = h.indexOf("?");
  return new URLSearchParams(q < 0 ? "" : h.slice(q + 1));
}

// Clears the notice unless it was said to outlive this page change.
export function pageChanged() {
  if (notice.dataset.keep) notice.dataset.keep = "";
  else say("");
}
