// Where a bot's fills show on its candle chart: an arrow at each fill, and
// a label ("buy 0.0123") only where it has room. Labels of fills a few
// candles apart are drawn over each other (a buy's under its bar can meet
// the sell's above the next when the price moves); so, across the span the
// chart opens on, a label goes only on a fill far enough from the last
// labelled one, whatever their sides. The arrows' colour and direction
// still tell every fill's side.

import type { SeriesMarker, UTCTimestamp } from "lightweight-charts";
import type { Schemas } from "../api/client";
import { formatDecimal } from "../lib/decimal";

type Fill = Schemas["FillView"];

/** About how many labels fit across the chart. */
export const LABELS_ACROSS = 10;

/** The chart colours of a buy and a sell (the stylesheet's good and bad). */
export const BUY = "#2ebd85";
export const SELL = "#f6465d";

export const seconds = (rfc3339: string) => (Date.parse(rfc3339) / 1000) as UTCTimestamp;

/** Markers for the fills from `from` to `to` (the candles shown, RFC 3339),
 * oldest first. */
export function fillMarkers(fills: Fill[], from: string, to: string): SeriesMarker<UTCTimestamp>[] {
  const [first, last] = [seconds(from), seconds(to)];
  const room = (last - first) / LABELS_ACROSS;
  let lastLabel: number | undefined;
  return fills
    .map((fill) => ({ fill, time: seconds(fill.at) }))
    .filter(({ time }) => time >= first)
    .sort((a, b) => a.time - b.time)
    .map(({ fill, time }) => {
      const buy = fill.side === "buy";
      const labelled = lastLabel === undefined || time - lastLabel >= room;
      if (labelled) lastLabel = time;
      return {
        time,
        position: buy ? "belowBar" : "aboveBar",
        shape: buy ? "arrowUp" : "arrowDown",
        color: buy ? BUY : SELL,
        text: labelled ? `${fill.side} ${formatDecimal(fill.quantity, 4)}` : "",
      };
    });
}
