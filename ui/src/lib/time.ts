// Times as the whole UI shows them: UTC, `YYYY-MM-DD HH:MM:SS`, the clock
// the API, the candles and the exchanges keep (a local time zone would make
// a fill and its candle read differently).

/** An RFC 3339 time as `2024-01-01 09:30:00` (UTC); "–" when absent. */
export function formatTime(rfc3339: string | null | undefined): string {
  if (!rfc3339) return "–";
  const at = new Date(rfc3339);
  if (Number.isNaN(at.getTime())) return rfc3339;
  return at.toISOString().replace("T", " ").slice(0, 19);
}
