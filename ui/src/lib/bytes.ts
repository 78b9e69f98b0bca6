// Byte counts as people read them: 812 B, 12.3 KiB, 4.5 MiB.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** `n` bytes in the largest binary unit it reaches; "—" when unknown. */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${UNITS[unit]}`;
}
