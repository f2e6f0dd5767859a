// The site feed: export a date range as JSON lines, and a live tail of new events.

import { h, replace, field, status } from "./dom.js";

/** Events per feed call (the endpoint's largest), the most an export gathers, the tail's pace and memory. */
const FEED_PAGE = 1000;
const EXPORT_EVENTS_MAX = 200000;
const TAIL_INTERVAL_MS = 2000;
const TAIL_ROWS_MAX = 200;
const EXPORT_PREVIEW_LINES = 20;

let tailTimer = null;

export function stopTail() {
  clearTimeout(tailTimer);
  tailTimer = null;
}

async function exportRange(api, from, to, message, link, preview) {
  const lines = [];
  let after = null;
  for (;;) {
    const slice = await api.get("/billing-credit-events", { recordedFrom: from, recordedTo: to, after, limit: FEED_PAGE });
    for (const e of slice.data) lines.push(JSON.stringify(e));
    status(message, `${lines.length} events…`);
    if (slice.data.length < FEED_PAGE || lines.length >= EXPORT_EVENTS_MAX) break;
    after = slice.next;
  }
  const blob = new Blob(lines.map((l) => `${l}\n`), { type: "application/x-ndjson" });
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(blob);
  link.hidden = false;
  preview.textContent = lines.slice(0, EXPORT_PREVIEW_LINES).join("\n");
  preview.hidden = lines.length === 0;
  status(message, `${lines.length} events ready${lines.length >= EXPORT_EVENTS_MAX ? ` (stopped at ${EXPORT_EVENTS_MAX})` : ""}.`, "ok");
}

export function feed(root, api) {
  stopTail();
  const message = h("p", { role: "status", class: "status" });
  const link = h("a", { id: "export-link", download: "site-events.jsonl", hidden: true }, "Download site-events.jsonl");
  const preview = h("pre", { id: "export-preview", class: "preview", hidden: true, tabindex: 0, "aria-label": `The first ${EXPORT_PREVIEW_LINES} lines` });
  const form = h("form", { id: "export-form", class: "inline-form" },
    ...field("export-from", "Recorded from (your local time)", { type: "datetime-local", step: 1, required: true }),
    ...field("export-to", "Recorded before", { type: "datetime-local", step: 1, required: true }),
    h("button", { type: "submit" }, "Export JSON lines"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const iso = (name) => new Date(form.elements[name].value).toISOString();
    exportRange(api, iso("export-from"), iso("export-to"), message, link, preview).catch((err) => status(message, err.message, "error"));
  });
  const tailList = h("ol", { id: "tail", class: "tail", reversed: true, "aria-live": "off" });
  const tailStatus = h("p", { id: "tail-status", role: "status", class: "status" });
  const toggle = h("button", { type: "button", id: "tail-toggle", "aria-pressed": "false" }, "Start live tail");
  let after = null;
  let since = null;
  const poll = async () => {
    try {
      const slice = await api.get("/billing-credit-events", { recordedFrom: since, after, limit: FEED_PAGE });
      after = slice.next;
      for (const e of slice.data) {
        tailList.prepend(h("li", {}, h("code", {}, e.recordedAt), ` ${e.type} v${e.version} of `, h("code", {}, e.billingCreditId),
          e.amount !== undefined ? ` amount ${e.amount}` : "", ` by ${e.actor}`));
      }
      while (tailList.children.length > TAIL_ROWS_MAX) tailList.lastChild.remove();
      status(tailStatus, `Live: ${tailList.children.length} events shown, checked ${new Date().toLocaleTimeString()}`, "ok");
    } catch (err) {
      status(tailStatus, err.message, "error");
    }
    if (tailTimer !== null) tailTimer = setTimeout(poll, TAIL_INTERVAL_MS);
  };
  toggle.addEventListener("click", () => {
    if (tailTimer !== null) {
      stopTail();
      toggle.textContent = "Start live tail";
      toggle.setAttribute("aria-pressed", "false");
      status(tailStatus, "Stopped.");
      return;
    }
    since = since ?? new Date().toISOString();
    toggle.textContent = "Stop live tail";
    toggle.setAttribute("aria-pressed", "true");
    tailTimer = 0;
    poll();
  });
  replace(root, h("h2", {}, "Export"), form, message, link, preview,
    h("h2", {}, "Live tail"), h("p", {}, "New events of the site as they commit, newest first."), toggle, tailStatus, tailList);
}
