// Credits: the list endpoint's filters and sorts, and the page of results.

import { h, replace, field, select, table, status } from "./dom.js";

const SORTS = ["createdAt", "updatedAt", "startDate", "endDate", "totalAmount", "usedAmount", "wastedAmount", "remainingAmount"];
const PAGE_SIZE_DEFAULT = "20";
const UUID_FILTERS = [
  ["wellnessPlanMembershipId", "Membership id"],
  ["wellnessPlanId", "Plan id"],
  ["wellnessPlanBenefitId", "Benefit id"],
  ["wellnessPlanMembershipCycleId", "Membership cycle id"],
  ["wellnessPlanMembershipStatusPeriodId", "Status period id"],
];

/** Renders the search form into `root`; `open(id)` opens a credit. */
export function credits(root, api, open) {
  const results = h("div", { id: "credit-results" });
  const message = h("p", { role: "status", class: "status" });
  const form = h("form", { id: "credit-search", class: "grid-form" },
    h("fieldset", {}, h("legend", {}, "Filters"),
      ...select("creditType", "Credit type", [["", "any"], ["quantity", "quantity"], ["monetary", "monetary"]]),
      ...select("isActive", "Active", [["", "any"], ["true", "active"], ["false", "inactive"]]),
      ...UUID_FILTERS.flatMap(([id, label]) => field(id, label, { autocomplete: "off", spellcheck: "false" }))),
    h("fieldset", {}, h("legend", {}, "Order and page"),
      ...select("sortBy", "Sort by", SORTS.map((s) => [s, s])),
      ...select("sortOrder", "Order", [["desc", "descending"], ["asc", "ascending"]]),
      ...field("page", "Page (from 0)", { type: "number", min: 0, value: 0 }),
      ...field("pageSize", "Page size", { type: "number", min: 1, max: 100, value: PAGE_SIZE_DEFAULT })),
    h("button", { type: "submit" }, "Search"));
  const openForm = h("form", { id: "credit-open", class: "inline-form" },
    ...field("open-id", "Open a credit by id", { autocomplete: "off", spellcheck: "false", required: true }),
    h("button", { type: "submit" }, "Open"));
  openForm.addEventListener("submit", (e) => { e.preventDefault(); open(openForm.elements["open-id"].value.trim()); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const params = Object.fromEntries(new FormData(form));
    status(message, "Searching…");
    try {
      const page = await api.get("/billing-credit", params);
      status(message, `${page.meta.total} credits; page ${page.meta.page + 1} of ${Math.max(1, page.meta.totalPages)}`);
      replace(results, table("Credits", ["Credit", "Type", "Total", "Used", "Wasted", "Remaining", "Start", "End", "Active"],
        page.data.map((c) => [
          h("a", { href: `#credit/${c.billingCreditId}`, onclick: (ev) => { ev.preventDefault(); open(c.billingCreditId); } }, c.billingCreditId),
          c.creditType, c.totalAmount, c.usedAmount, c.wastedAmount, c.remainingAmount, c.startDate, c.endDate ?? "", c.isActive ? "yes" : "no",
        ])));
    } catch (err) {
      status(message, err.message, "error");
    }
  });
  replace(root, h("h2", {}, "Credits"), openForm, form, message, results);
}
