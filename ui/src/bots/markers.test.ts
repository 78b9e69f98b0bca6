import { describe, expect, it } from "vitest";
import { fillMarkers, LABELS_ACROSS } from "./markers";

const MINUTE = 60_000;
const start = Date.parse("2026-12-01T00:00:00Z");
const at = (minute: number) => new Date(start + minute * MINUTE).toISOString();
const fill = (minute: number, side: "buy" | "sell", quantity = "0.123456") => ({
  at: at(minute),
  client_tag: "t",
  fee: "0.1",
  liquidity: "taker",
  order_id: String(minute),
  origin: "strategy",
  price: "100",
  quantity,
  side,
});

describe("fill markers on the candle chart", () => {
  it("label every fill when they are far apart, with a short quantity", () => {
    const markers = fillMarkers([fill(100, "sell"), fill(10, "buy")], at(0), at(120));
    expect(markers.map((m) => m.text)).toEqual(["buy 0.1235", "sell 0.1235"]);
    expect(markers.map((m) => m.position)).toEqual(["belowBar", "aboveBar"]);
  });

  it("label only fills with room when they crowd, but keep every arrow", () => {
    // A buy every two minutes over 240 minutes: 120 fills, room for about
    // LABELS_ACROSS labels.
    const fills = Array.from({ length: 120 }, (_, i) => fill(2 * i, "buy"));
    const markers = fillMarkers(fills, at(0), at(240));
    expect(markers).toHaveLength(120);
    const labelled = markers.filter((m) => m.text !== "");
    expect(labelled.length).toBeGreaterThanOrEqual(LABELS_ACROSS - 1);
    expect(labelled.length).toBeLessThanOrEqual(LABELS_ACROSS + 1);
    const gaps = labelled.slice(1).map((m, i) => m.time - labelled[i].time);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual((240 * 60) / LABELS_ACROSS);
  });

  it("space labels whatever their sides, still drawing each side's arrow", () => {
    const markers = fillMarkers([fill(10, "buy"), fill(11, "sell"), fill(40, "sell")], at(0), at(240));
    expect(markers.map((m) => m.text)).toEqual(["buy 0.1235", "", "sell 0.1235"]);
    expect(markers.map((m) => m.shape)).toEqual(["arrowUp", "arrowDown", "arrowDown"]);
  });

  it("leave out fills before the first candle shown", () => {
    const markers = fillMarkers([fill(5, "buy"), fill(50, "sell")], at(30), at(90));
    expect(markers.map((m) => m.text)).toEqual(["sell 0.1235"]);
  });
});
