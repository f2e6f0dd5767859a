// The balances of one credit over time, folded from its events (the same steps as the
// ledger's evolve), and drawn as an inline SVG step chart.

import { add } from "./amount.js";

const SERIES = [
  ["total", "Total", "#1f5fa8"],
  ["used", "Used", "#b15a00"],
  ["wasted", "Wasted", "#a3238e"],
  ["remaining", "Remaining", "#1b7a3a"],
];
const WIDTH = 720;
const HEIGHT = 260;
const PAD = { left: 48, right: 16, top: 12, bottom: 28 };
const SVG = "http://www.w3.org/2000/svg";

/** After each event: { at, version, type, total, used, wasted, remaining } (decimal strings). */
export function balances(events) {
  let total = "0", used = "0", wasted = "0";
  const points = [];
  for (const e of events) {
    switch (e.type) {
      case "CreditIssued": total = String(e.amount); used = String(e.usedAmount ?? 0); wasted = String(e.wastedAmount ?? 0); break;
      case "CreditUsed": used = add(used, e.amount); break;
      case "CreditUseReversed": used = add(used, e.amount, -1); break;
      case "CreditWasted": case "CreditExpired": wasted = add(wasted, e.amount); break;
      case "CreditWasteReversed": wasted = add(wasted, e.amount, -1); break;
      case "CreditTotalAdjusted": total = add(total, e.delta); break;
      default: break;
    }
    const remaining = add(add(total, used, -1), wasted, -1);
    points.push({ at: e.recordedAt, version: e.version, type: e.type, total, used, wasted, remaining });
  }
  return points;
}

function el(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** An SVG step chart of the points, one step per event (evenly spaced, in order). */
export function chart(points) {
  const svg = el("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", class: "chart", "aria-labelledby": "chart-title" });
  svg.append(el("title", { id: "chart-title" }, `Total, used, wasted and remaining after each of ${points.length} events`));
  if (points.length === 0) return svg;
  const values = points.flatMap((p) => SERIES.map(([k]) => Number(p[k])));
  const max = Math.max(1, ...values), min = Math.min(0, ...values);
  const x = (i) => PAD.left + (i * (WIDTH - PAD.left - PAD.right)) / Math.max(1, points.length - 1);
  const y = (v) => PAD.top + ((max - Number(v)) * (HEIGHT - PAD.top - PAD.bottom)) / (max - min);
  for (const tick of [min, (min + max) / 2, max]) {
    svg.append(el("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(tick), y2: y(tick), class: "grid" }));
    svg.append(el("text", { x: PAD.left - 6, y: y(tick) + 4, "text-anchor": "end", class: "axis" }, String(+tick.toFixed(2))));
  }
  points.forEach((p, i) => svg.append(el("text", { x: x(i), y: HEIGHT - 8, "text-anchor": "middle", class: "axis" }, `v${p.version}`)));
  for (const [key, , color] of SERIES) {
    let d = `M ${x(0)} ${y(points[0][key])}`;
    points.forEach((p, i) => { if (i > 0) d += ` H ${x(i)} V ${y(p[key])}`; });
    svg.append(el("path", { d, fill: "none", stroke: color, "stroke-width": 2, class: `series-${key}` }));
  }
  points.forEach((p, i) => {
    const g = el("g", { class: "point", "data-version": p.version, "data-total": p.total, "data-used": p.used, "data-wasted": p.wasted, "data-remaining": p.remaining });
    g.append(el("title", {}, `v${p.version} ${p.type}: total ${p.total}, used ${p.used}, wasted ${p.wasted}, remaining ${p.remaining}`));
    for (const [key, , color] of SERIES) g.append(el("circle", { cx: x(i), cy: y(p[key]), r: 3, fill: color }));
    svg.append(g);
  });
  return svg;
}

/** The legend: each series with its colour and its value at the last point, and the time span. */
export function legend(points) {
  const last = points.at(-1) ?? {};
  const wrap = document.createElement("div");
  const span = document.createElement("p");
  span.className = "span";
  span.textContent = points.length
    ? `One step per event (v${points[0].version} to v${last.version}), recorded ${points[0].at} to ${last.at}.`
    : "No events.";
  const ul = document.createElement("ul");
  ul.className = "legend";
  for (const [key, label] of SERIES) {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = `swatch swatch-${key}`;
    li.append(swatch, `${label}: `);
    const value = document.createElement("strong");
    value.className = `last-${key}`;
    value.textContent = last[key] ?? "–";
    li.append(value);
    ul.append(li);
  }
  wrap.append(ul, span);
  return wrap;
}
