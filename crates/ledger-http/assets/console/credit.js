// One credit: its state (now or as of an instant), its timeline of events, a chart of
// its balances after each event, and the server's verification of its hash chain.

import { h, replace, field, table, status } from "./dom.js";
import { balances, chart, legend } from "./chart.js";
import { can, SCOPE_AUDIT } from "./session.js";

/** Events per history page (the endpoint's largest) and the most pages read for one credit. */
const HISTORY_PAGE_SIZE = 100;
const HISTORY_PAGES_MAX = 50;

async function history(api, id) {
  const events = [];
  for (let page = 0; page < HISTORY_PAGES_MAX; page++) {
    const slice = await api.get(`/billing-credit/${id}/events`, { page, pageSize: HISTORY_PAGE_SIZE });
    events.push(...slice.data);
    if (!slice.meta.hasNext) break;
  }
  return events;
}

function summary(c) {
  const rows = [["Type", c.creditType], ["Total", c.totalAmount], ["Used", c.usedAmount], ["Wasted", c.wastedAmount],
    ["Remaining", c.remainingAmount], ["Start", c.startDate], ["End", c.endDate ?? ""], ["Active", c.isActive ? "yes" : "no"],
    ["Expired", c.expired ? "yes" : "no"], ["Membership", c.wellnessPlanMembershipId ?? ""]];
  return h("dl", { class: "summary", id: "credit-summary" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { "data-field": k.toLowerCase() }, String(v))]));
}

function timeline(events) {
  const rows = events.map((e) => [String(e.version), e.type, e.amount ?? e.delta ?? "", e.actor,
    [e.reason, e.reference, e.note].filter(Boolean).join(" · "), e.recordedAt, e.occurredAt, h("code", { class: "hash", title: e.hash }, e.hash.slice(0, 12))]);
  return table("Timeline, oldest first", ["Version", "Type", "Amount", "Actor", "Reason / reference", "Recorded", "Occurred", "Hash"], rows, { id: "timeline" });
}

/** Renders credit `id` into `root`. */
export async function credit(root, api, session, rawId) {
  const id = encodeURIComponent(rawId);
  const state = h("div", { id: "credit-state" });
  const message = h("p", { role: "status", class: "status" });
  const verdict = h("p", { id: "verify-result", role: "status", class: "status" });
  const asOfForm = h("form", { id: "as-of", class: "inline-form" },
    ...field("as-of-instant", "As of (your local time)", { type: "datetime-local", step: 1 }),
    h("button", { type: "submit" }, "Show then"), h("button", { type: "button", id: "as-of-now" }, "Now"));
  const verifyButton = h("button", { type: "button", id: "verify" }, "Verify");
  const showState = async (asOf) => {
    const c = await api.get(`/billing-credit/${id}`, { asOf });
    replace(state, h("h3", {}, asOf ? `As of ${asOf}` : "Now"), summary(c));
  };
  asOfForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const local = asOfForm.elements["as-of-instant"].value;
    if (!local) return;
    try { await showState(new Date(local).toISOString()); } catch (err) { status(message, err.message, "error"); }
  });
  asOfForm.querySelector("#as-of-now").addEventListener("click", () => showState().catch((err) => status(message, err.message, "error")));
  verifyButton.addEventListener("click", async () => {
    status(verdict, "Verifying…");
    try {
      const v = await api.get(`/billing-credit/${id}/verify`);
      if (v.ok) status(verdict, `OK: ${v.eventsChecked} events match their hashes and the projection equals their replay.`, "ok");
      else status(verdict, `NOT OK: ${v.firstMismatch.finding}`, "error");
    } catch (err) { status(verdict, err.message, "error"); }
  });
  const audit = can(session, SCOPE_AUDIT);
  const chartBox = h("div", { class: "credit-chart" });
  const timelineBox = h("div");
  replace(root, h("h2", {}, "Credit ", h("code", { id: "credit-id" }, rawId)), message,
    h("div", { class: "credit-grid" },
      h("div", { class: "credit-side" }, asOfForm, state,
        audit ? h("div", { class: "verify" }, verifyButton, verdict) : h("p", {}, "The timeline and verification need the billing-credit:audit scope.")),
      chartBox),
    timelineBox);
  try {
    await showState();
  } catch (err) {
    status(message, err.message, "error");
    return;
  }
  if (!audit) return;
  try {
    const events = await history(api, id);
    const points = balances(events);
    replace(chartBox, h("h3", {}, "Balances after each event"), h("figure", { id: "balance-chart" }, chart(points), h("figcaption", {}, legend(points))));
    replace(timelineBox, timeline(events));
  } catch (err) {
    status(message, err.message, "error");
  }
}
