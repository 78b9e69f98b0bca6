import { describe, expect, it } from "vitest";
import { diffRows } from "./DiffView";

const doc = (slow: number) =>
  ["id: a", "name: a", "strategy:", "  plugin: ema-cross", "  params:", "    fast: 5", `    slow: ${slow}`, "market:", "  symbol: BTCUSDT", "  timeframe: 1m", "capital:", "  quote: USDT", "  initial: '10000'", "autostart: true", ""].join("\n");

describe("diffRows", () => {
  it("shows a change with its context and folds the unchanged lines further away", () => {
    const rows = diffRows(doc(20), doc(21), 2);
    expect(rows).toEqual([
      { kind: "folded", count: 4 },
      { kind: "same", text: "  params:" },
      { kind: "same", text: "    fast: 5" },
      { kind: "removed", text: "    slow: 20" },
      { kind: "added", text: "    slow: 21" },
      { kind: "same", text: "market:" },
      { kind: "same", text: "  symbol: BTCUSDT" },
      { kind: "folded", count: 5 },
    ]);
  });

  it("is empty when nothing changed", () => {
    expect(diffRows(doc(20), doc(20))).toEqual([]);
  });
});
