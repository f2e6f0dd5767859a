// A member's view: balance lines and statement, from the member read models.

import { h, replace, field, table, status } from "./dom.js";

const STATEMENT_LIMIT = 50;

export function member(root, api) {
  const out = h("div", { id: "member-results" });
  const message = h("p", { role: "status", class: "status" });
  const form = h("form", { id: "member-form", class: "inline-form" },
    ...field("member-id", "Membership id", { required: true, autocomplete: "off", spellcheck: "false" }),
    ...field("member-as-of", "As of (optional, your local time)", { type: "datetime-local", step: 1 }),
    h("button", { type: "submit" }, "Show"));
  let cursor = null;
  const more = h("button", { type: "button", id: "statement-more", hidden: true }, "More entries");
  const statementBody = h("div");
  const loadStatement = async (id, reset) => {
    const page = await api.get("/billing-credit-entries", { wellnessPlanMembershipId: id, limit: STATEMENT_LIMIT, cursor: reset ? null : cursor });
    cursor = page.meta.nextCursor;
    more.hidden = !page.meta.hasMore;
    const t = table("Statement, newest first", ["Recorded", "Type", "Credit", "Amount", "Remaining after", "Reference / reason", "Actor"],
      page.data.map((e) => [e.recordedAt, e.type, e.billingCreditId, e.amount, e.remainingAfter, [e.reference, e.reason, e.note].filter(Boolean).join(" · "), e.actor]));
    if (reset) replace(statementBody, t); else statementBody.append(t);
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const id = form.elements["member-id"].value.trim();
    const local = form.elements["member-as-of"].value;
    status(message, "Loading…");
    try {
      const balance = await api.get("/billing-credit-balance", { wellnessPlanMembershipId: id, asOf: local ? new Date(local).toISOString() : null });
      replace(out, table(`Balance as of ${balance.asOf}`, ["Type", "Unit", "Total", "Used", "Wasted", "Remaining", "Credits", `Expiring within ${balance.expiringWithinDays} days`, "Next expiry"],
        balance.data.map((l) => [l.creditType, l.unit ?? "", l.totalAmount, l.usedAmount, l.wastedAmount, l.remainingAmount, l.creditCount, l.expiringAmount, l.nextExpiry ?? ""])), statementBody, more);
      await loadStatement(id, true);
      status(message, "");
    } catch (err) {
      status(message, err.message, "error");
    }
  });
  more.addEventListener("click", () => loadStatement(form.elements["member-id"].value.trim(), false).catch((err) => status(message, err.message, "error")));
  replace(root, h("h2", {}, "Member"), form, message, out);
}
