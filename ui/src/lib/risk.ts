// How a risk rule and its numbers are said, wherever they are shown (the
// risk panel, the timeline, toasts).

import { formatDecimal } from "./decimal";

/** A rule's name in words: "max drawdown". */
export function ruleName(rule: string): string {
  return rule.replaceAll("_", " ");
}

/** A rule's limit or reading in its unit (`percent` of equity or a
 * `count`): "1.44 %", "3". */
export function formatInUnit(value: string, unit: string): string {
  return unit === "percent" ? `${formatDecimal(value, 2)} %` : formatDecimal(value, 0);
}

/** A reading against its limit: "21.38 % / 20.00 %". */
export function readingOfLimit(v: { observed: string; limit: string; unit: string }): string {
  return `${formatInUnit(v.observed, v.unit)} / ${formatInUnit(v.limit, v.unit)}`;
}
