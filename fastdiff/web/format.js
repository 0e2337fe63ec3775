// Numbers and names in messages written as the Python side writes them, so that the page's messages
// are the app's word for word.

/** Python's format(x, "g") (precision 6) or format(x, ".{precision}g"): that many significant digits,
 * trailing zeros dropped, exponent notation below 1e-4 and from 10^precision. (Exact decimal ties, such
 * as 1234565, round up here and to even in Python.) */
export function formatG(x, precision = 6) {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const [mantissa, exponentText] = x.toExponential(precision - 1).split("e");
  const exponent = Number(exponentText);
  const strip = (text) => (text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text);
  if (exponent >= -4 && exponent < precision) return strip(x.toFixed(precision - 1 - exponent));
  const digits = String(Math.abs(exponent)).padStart(2, "0");
  return `${strip(mantissa)}e${exponent < 0 ? "-" : "+"}${digits}`;
}

/** Python's float(text) for the text of a form field: NaN for "nan", null where Python raises. */
export function parsePythonFloat(text) {
  const value = String(text).trim().replace(/(\d)_(?=\d)/g, "$1");
  if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(value)) return Number(value);
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(value);
  if (!special) return null;
  if (special[2].toLowerCase() === "nan") return NaN;
  return special[1] === "-" ? -Infinity : Infinity;
}

/** Python's repr of a str, as a ValueError message quotes what was typed. */
export function pythonRepr(text) {
  return text.includes("'") && !text.includes('"') ? `"${text}"` : `'${text.replace(/'/g, "\\'")}'`;
}

/** Python's str(x) of a float (its repr): "2.0", "0.1", "1e-05", "1e+16", "nan", "inf". */
export function reprFloat(x) {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const [digits, exponentText] = x.toExponential().split("e"); // shortest round-trip digits, as repr
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 16) {
    return `${digits}e${exponent < 0 ? "-" : "+"}${String(Math.abs(exponent)).padStart(2, "0")}`;
  }
  const text = Object.is(x, -0) ? "-0" : String(x);
  return text.includes(".") ? text : `${text}.0`;
}

/** Python's round() of a float to an integer: halves to even. */
export function roundHalfEven(x) {
  const floor = Math.floor(x), rest = x - floor;
  if (rest !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** "1 image", "16 images". */
export function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}
