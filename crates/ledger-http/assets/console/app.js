// The console's entry: sign in (token → site), then one view at a time. The view is
// in the URL's fragment (never the token), so back/forward and reload work.

import { h, replace, status } from "./dom.js";
import { Api, UNAUTHORIZED } from "./api.js";
import * as session from "./session.js";
import { credits } from "./credits.js";
import { credit } from "./credit.js";
import { member } from "./member.js";
import { feed, stopTail } from "./feed.js";

const $ = (id) => document.getElementById(id);
const WILDCARD = "*";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function showSignIn() {
  stopTail();
  $("nav").hidden = true;
  $("sign-in").hidden = false;
  $("site-form").hidden = true;
  replace($("view"));
  $("token").focus();
}

function readToken(e) {
  e.preventDefault();
  const token = $("token").value.trim();
  try {
    const claims = session.claims(token);
    if (claims.exp * 1000 < Date.now()) throw new Error("this token has expired");
    const sites = claims.sites.filter((s) => s !== WILDCARD);
    const options = sites.map((s) => h("option", { value: s }, s));
    if (claims.sites.includes(WILDCARD)) options.push(h("option", { value: WILDCARD }, "another site (type its id)"));
    if (options.length === 0) throw new Error("this token grants no site");
    replace($("site"), options);
    $("site-form").hidden = false;
    toggleOther();
    status($("sign-in-status"), `Signed as ${claims.sub}; scopes: ${claims.scopes.join(", ") || "none"}. Choose a site.`);
    $("site").focus();
  } catch (err) {
    status($("sign-in-status"), `Not a usable token: ${err.message}`, "error");
  }
}

function toggleOther() {
  const other = $("site").value === WILDCARD;
  $("site-other").hidden = !other;
  $("site-other-label").hidden = !other;
}

function chooseSite(e) {
  e.preventDefault();
  const site = $("site").value === WILDCARD ? $("site-other").value.trim() : $("site").value;
  if (!UUID.test(site)) {
    status($("sign-in-status"), "The site must be a UUID.", "error");
    return;
  }
  session.save($("token").value.trim(), site);
  $("token").value = "";
  start();
}

function route() {
  const s = session.current();
  if (!s) return showSignIn();
  stopTail();
  const api = new Api(s);
  const view = $("view");
  const [name, arg] = location.hash.replace(/^#/, "").split("/");
  for (const b of document.querySelectorAll("#nav [data-view]")) b.setAttribute("aria-current", b.dataset.view === (name || "credits") ? "page" : "false");
  if (name === "credit" && arg) credit(view, api, s, arg);
  else if (name === "member") member(view, api);
  else if (name === "feed" && session.can(s, session.SCOPE_AUDIT)) feed(view, api);
  else if (name === "feed") replace(view, h("p", {}, "Export and the live feed need the billing-credit:audit scope."));
  else credits(view, api, (id) => { location.hash = `credit/${id}`; });
  $("main").focus();
}

function start() {
  const s = session.current();
  if (!s) return showSignIn();
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("who").textContent = `${s.claims.sub} · site ${s.site}`;
  route();
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", readToken);
  $("site-form").addEventListener("submit", chooseSite);
  $("site").addEventListener("change", toggleOther);
  $("sign-out").addEventListener("click", () => { session.clear(); location.hash = ""; showSignIn(); });
  for (const b of document.querySelectorAll("#nav [data-view]")) {
    b.addEventListener("click", () => { location.hash = b.dataset.view; });
  }
  window.addEventListener("hashchange", route);
  window.addEventListener(UNAUTHORIZED, (e) => {
    session.clear();
    showSignIn();
    status($("sign-in-status"), `The server refused the token; sign in again. ${e.detail}`, "error");
  });
  start();
});
