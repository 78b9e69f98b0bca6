import { describe, expect, it } from "vitest";
import { coveredText, formatParams, heldParams, rangeText, rangesText, requestOf, searchText, sourceFor } from "./jobs";

const bots = [
  { id: "breakout-sol", symbol: "SOLUSDT", timeframe: "15m" },
  { id: "rsi-eth", symbol: "ETHUSDT", timeframe: "1m" },
  { id: "ema-btc", symbol: "BTCUSDT", timeframe: "1m" },
];

describe("the source a job form keeps when the data set changes", () => {
  it("gives a bot on another timeframe up for the bot on the data set's market", () => {
    expect(sourceFor({ kind: "bot", id: "breakout-sol" }, "BTCUSDT/1m", bots)).toEqual({ kind: "bot", id: "ema-btc" });
  });

  it("falls back to a bot on the data set's timeframe", () => {
    expect(sourceFor({ kind: "bot", id: "breakout-sol" }, "XRPUSDT/1m", bots)).toEqual({ kind: "bot", id: "rsi-eth" });
  });

  it("keeps a bot on the same timeframe, whatever its symbol", () => {
    expect(sourceFor({ kind: "bot", id: "rsi-eth" }, "XRPUSDT/1m", bots)).toEqual({ kind: "bot", id: "rsi-eth" });
    expect(sourceFor({ kind: "bot", id: "rsi-eth" }, "BTCUSDT/1m", bots)).toEqual({ kind: "bot", id: "rsi-eth" });
  });

  it("keeps the chosen bot when no bot fits better, and a config written here always", () => {
    expect(sourceFor({ kind: "bot", id: "breakout-sol" }, "BTCUSDT/4h", bots)).toEqual({ kind: "bot", id: "breakout-sol" });
    const written = { kind: "config" as const, config: {} };
    expect(sourceFor(written, "BTCUSDT/1m", bots)).toBe(written);
  });
});

describe("a job form's range", () => {
  it("includes both days: the request's end is the start of the day after", () => {
    const request = requestOf({ source: { kind: "bot", id: "ema-btc" }, data: "BTCUSDT/1m", from: "2024-03-01", to: "2024-03-31" });
    expect(request.from).toBe("2024-03-01T00:00:00Z");
    expect(request.to).toBe("2024-04-01T00:00:00Z");
  });

  it("leaves an unset end open", () => {
    expect(requestOf({ source: { kind: "bot", id: "ema-btc" }, data: "BTCUSDT/1m", from: "", to: "" }).to).toBeNull();
  });
});

describe("the range a job page names", () => {
  it("reads whole UTC days back as the days the form took, the last included", () => {
    expect(rangeText("2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z")).toBe(
      " from 2026-01-01 to the end of 2026-01-02 (UTC)",
    );
  });

  it("names other bounds by their instant, the end left out", () => {
    expect(rangeText("2026-01-01T06:30:00Z", "2026-01-02T12:00:00Z")).toBe(
      " from 2026-01-01 06:30:00 until 2026-01-02 12:00:00 (not included)",
    );
  });

  it("says where an open range starts or ends", () => {
    expect(rangeText(null, "2026-01-03T00:00:00Z")).toBe(" from the first candle to the end of 2026-01-02 (UTC)");
    expect(rangeText("2026-01-01T00:00:00Z", null)).toBe(" from 2026-01-01 to the last candle (UTC)");
    expect(rangeText(null, null)).toBe(", all of it");
  });
});

describe("the candles a backtest ran on", () => {
  it("names its first and last day, both included, and how many", () => {
    const job = { ran_from: "2024-01-14T00:00:00.000Z", ran_to: "2024-01-14T21:20:00.000Z", candles: 1280 };
    expect(coveredText(job)).toBe("2024-01-14 to 2024-01-14, 1280 candles");
    // A run ending at midnight ends the day before.
    expect(coveredText({ ...job, ran_to: "2024-01-16T00:00:00.000Z", candles: 2880 })).toBe("2024-01-14 to 2024-01-15, 2880 candles");
  });

  it("says nothing before the run", () => {
    expect(coveredText({ ran_from: null, ran_to: null, candles: null })).toBeUndefined();
  });
});

describe("how an optimisation searches, in words", () => {
  const spec = { min_trades: 1, objective: "sharpe", params: {} };
  it("names the sampler and its trials", () => {
    expect(searchText({ ...spec, sampler: { kind: "grid" } })).toBe("every combination");
    expect(searchText({ ...spec, sampler: { kind: "random", trials: 200, seed: 1 } })).toBe("200 random sets");
    expect(searchText({ ...spec, sampler: { kind: "tpe", trials: 50, seed: 1 } })).toBe("50 model-based (TPE) sets");
  });

  it("says when it walks forward", () => {
    const walk = { scheme: "rolling" as const, train_ms: 90 * 86_400_000, test_ms: 30 * 86_400_000 };
    expect(searchText({ ...spec, sampler: { kind: "grid" }, walk_forward: walk })).toBe("every combination, walk-forward (rolling)");
  });
});

describe("the ranges an optimisation searched", () => {
  const spec = { min_trades: 1, objective: "sharpe", sampler: { kind: "grid" as const } };
  it("names each parameter's range", () => {
    expect(rangesText({ ...spec, params: { fast: "3..21:2", slow: "25..205:20" } })).toBe("fast=3..21:2; slow=25..205:20");
  });

  it("says a job without them searched the default", () => {
    expect(rangesText({ ...spec, params: {} })).toBe("the plugin's default search");
  });
});

describe("the parameters a search held, said once", () => {
  const size = { percent_of_equity: 20 };
  it("finds what every set holds at one value", () => {
    const sets = [
      { fast: 5, slow: 20, size },
      { fast: 8, slow: 20, size: { percent_of_equity: 20 } },
      { fast: 5, slow: 30, size },
    ];
    expect(heldParams(sets)).toEqual({ size });
    expect(formatParams(sets[0], heldParams(sets))).toBe("fast=5, slow=20");
    expect(formatParams(heldParams(sets))).toBe('size={"percent_of_equity":20}');
  });

  it("holds nothing over one set, nor a parameter some set lacks", () => {
    expect(heldParams([{ fast: 5 }])).toEqual({});
    // Names an object inherits are no parameters.
    expect(formatParams({ constructor: 3, fast: 5 }, { fast: 5 })).toBe("constructor=3");
    expect(heldParams([{ fast: 5, slow: 20 }, { fast: 5 }, null])).toEqual({ fast: 5 });
  });
});
