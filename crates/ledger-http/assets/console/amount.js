// Exact decimal sums for amounts (JSON numbers of the API): scaled BigInts, so
// 0.1 + 0.2 is 0.3 and the chart shows what the server stores.

function parse(value) {
  const text = typeof value === "number" ? value.toLocaleString("en-US", { useGrouping: false, maximumFractionDigits: 20 }) : String(value);
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = text.replace(/^[-+]/, "").split(".");
  return { digits: BigInt(whole + fraction) * (negative ? -1n : 1n), scale: fraction.length };
}

function rescale(a, scale) {
  return a.digits * 10n ** BigInt(scale - a.scale);
}

/** a + b * sign, as a decimal string. */
export function add(a, b, sign = 1) {
  const x = parse(a), y = parse(b);
  const scale = Math.max(x.scale, y.scale);
  return format(rescale(x, scale) + BigInt(sign) * rescale(y, scale), scale);
}

function format(digits, scale) {
  const negative = digits < 0n;
  let text = (negative ? -digits : digits).toString().padStart(scale + 1, "0");
  if (scale > 0) text = `${text.slice(0, -scale)}.${text.slice(-scale)}`.replace(/\.?0+$/, "");
  return (negative ? "-" : "") + text;
}
