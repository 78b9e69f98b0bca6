// Money, prices and quantities arrive as decimal strings and stay strings:
// formatting works on their digits, never through a float, so 0.1 + 0.2
// style errors cannot appear in what an operator reads.

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

/** Round the digits of `text` half up to `places` decimals (string in, string out). */
export function roundDecimal(text: string, places: number): string {
  const match = DECIMAL.exec(text.trim());
  if (!match) return text;
  const [, sign, whole, fraction = ""] = match;
  if (fraction.length <= places) {
    const padded = places > 0 ? `.${fraction.padEnd(places, "0")}` : "";
    return normaliseSign(`${sign}${whole}${padded}`);
  }
  const kept = whole + fraction.slice(0, places);
  const roundUp = fraction.charCodeAt(places) >= 53; // "5"
  const digits = roundUp ? addOne(kept) : kept;
  const integerLength = digits.length - places;
  const integer = digits.slice(0, integerLength) || "0";
  const decimals = digits.slice(integerLength);
  return normaliseSign(`${sign}${integer}${places > 0 ? `.${decimals}` : ""}`);
}

/** Add one to a string of digits. */
function addOne(digits: string): string {
  const out = digits.split("");
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] === "9") {
      out[i] = "0";
    } else {
      out[i] = String.fromCharCode(out[i].charCodeAt(0) + 1);
      return out.join("");
    }
  }
  return `1${out.join("")}`;
}

/** "-0.00" reads as "0.00". */
function normaliseSign(text: string): string {
  return /^-[0.]*$/.test(text) ? text.slice(1) : text;
}

/** Group the integer part in thousands: "12345.6" -> "12,345.6". */
export function groupThousands(text: string): string {
  const [integer, fraction] = text.split(".");
  const negative = integer.startsWith("-");
  const digits = negative ? integer.slice(1) : integer;
  const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${grouped}${fraction !== undefined ? `.${fraction}` : ""}`;
}

/** A decimal for display: rounded to `places`, grouped. Missing shows as an en dash. */
export function formatDecimal(text: string | null | undefined, places = 2): string {
  if (text === null || text === undefined || text === "") return "–";
  return groupThousands(roundDecimal(text, places));
}

/** The sign of a decimal string: -1, 0 or 1. */
export function sign(text: string | null | undefined): -1 | 0 | 1 {
  if (!text) return 0;
  const trimmed = text.trim();
  if (/^-?[0.]*$/.test(trimmed)) return 0;
  return trimmed.startsWith("-") ? -1 : 1;
}

/** Signed display ("+12.50", "-3.10", "0.00"). */
export function formatSigned(text: string | null | undefined, places = 2): string {
  const formatted = formatDecimal(text, places);
  return sign(text) > 0 ? `+${formatted}` : formatted;
}

/** Compare two decimal strings exactly: negative, zero or positive. */
export function compareDecimal(a: string, b: string): number {
  const parse = (text: string) => {
    const match = DECIMAL.exec(text.trim());
    if (!match) return { negative: false, whole: "0", fraction: "" };
    const [, sign, whole, fraction = ""] = match;
    return { negative: sign === "-", whole: whole.replace(/^0+(?=\d)/, ""), fraction };
  };
  const x = parse(a);
  const y = parse(b);
  if (x.negative !== y.negative) return x.negative ? -1 : 1;
  const width = Math.max(x.fraction.length, y.fraction.length);
  const digitsX = x.whole.padStart(32, "0") + x.fraction.padEnd(width, "0");
  const digitsY = y.whole.padStart(32, "0") + y.fraction.padEnd(width, "0");
  const order = digitsX < digitsY ? -1 : digitsX > digitsY ? 1 : 0;
  return x.negative ? -order : order;
}

/** The exact sum of decimal strings (BigInt arithmetic on scaled digits). */
export function sumDecimals(values: string[]): string {
  let scale = 0;
  const parsed = values.flatMap((text) => {
    const match = DECIMAL.exec(text.trim());
    if (!match) return [];
    const [, sign, whole, fraction = ""] = match;
    scale = Math.max(scale, fraction.length);
    return [{ negative: sign === "-", whole, fraction }];
  });
  let total = 0n;
  for (const { negative, whole, fraction } of parsed) {
    const digits = BigInt(whole + fraction.padEnd(scale, "0"));
    total += negative ? -digits : digits;
  }
  const negative = total < 0n;
  const digits = (negative ? -total : total).toString().padStart(scale + 1, "0");
  const integer = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale);
  return `${negative ? "-" : ""}${integer}${scale > 0 ? `.${fraction}` : ""}`;
}
