// The dashboard: a small hash-routed page over /api/v1 (DESIGN.md section 4).
// Each section of the site is a module exporting route(parts); `sections`
// maps the first part of the hash (#/domains/...) to it, and app.html's
// navigation links carry the same name in data-section.
import { session, api, pageChanged } from "./ui.js";
import * as domains from "./domains.js";
import * as quarantine from "./quarantine.js";
import * as lists from "./lists.js";
import * as users from "./users.js";
import * as account from "./account.js";
import * as audit from "./audit.js";
import * as feed from "./feed.js";
import * as track from "./track.js";
import * as stats from "./stats.js";

const sections = {
  domains: domains.route,
  quarantine: quarantine.route,
  lists: lists.route,
  users: users.route,
  account: account.route,
  audit: audit.route,
  feed: feed.route,
  track: track.route,
  stats: stats.route,
};

// Where a role lands on "#/".
function home(role) {
  return role === "user" ? "quarantine" : "domains";
}

function route() {
  pageChanged();
  const h = decodeURIComponent(window.location.hash.replace(/\?.*$/, "")) || "#/";
  const parts = h.replace(/^#\/?/, "").split("/");
  if (!parts[0] || !sections[parts[0]]) parts[0] = home(session.me.role);
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.section === parts[0]) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  return sections[parts[0]](parts);
}

async function start() {
  const r = await api("GET", "/api/v1/me");
  if (!r.ok) return;
  const me = r.data;
  session.me = me;
  const where = me.domain || me.customer;
  document.getElementById("who").textContent = `${me.user} · ${me.role}${where ? ` · ${where}` : ""}`;
  // data-roles="a b": the link is shown to those roles only.
  for (const li of document.querySelectorAll("#nav [data-roles]")) {
    li.hidden = !li.dataset.roles.split(" ").includes(me.role);
  }
  document.getElementById("logout").addEventListener("click", async () => {
    await api("DELETE", "/api/v1/session");
    window.location.replace("/");
  });
  window.addEventListener("hashchange", route);
  route();
}

start();
