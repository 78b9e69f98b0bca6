import { describe, expect, it } from "vitest";
import type { Envelope } from "../api/stream";
import { setToastKind } from "../lib/prefs";
import { toastFor, withToast } from "./Toasts";

const fill = {
  seq: 1,
  ts: "t",
  type: "order.filled",
  channel: "orders",
  bot_id: "ema-btc",
  data: { order: {}, fill: { side: "buy", quantity: "0.50000", price: "43210.5" } },
} as unknown as Envelope;

const kill = {
  seq: 2,
  ts: "t",
  type: "risk.kill_switch",
  channel: "risk",
  bot_id: "ema-btc",
  data: { reason: "max drawdown 20% breached" },
} as unknown as Envelope;

const violation = {
  seq: 3,
  ts: "t",
  type: "risk.violation",
  channel: "risk",
  bot_id: "ema-btc",
  data: { at: "t", rule: "max_drawdown", limit: "20", observed: "21.375", unit: "percent", action: "halt" },
} as unknown as Envelope;

describe("toasts", () => {
  it("say a violation in the rule's unit", () => {
    setToastKind("risk", true);
    expect(toastFor(violation)?.text).toBe("ema-btc: max drawdown breached (21.38 % / 20.00 %)");
  });

  it("raise one for a fill and a kill-switch, each kind can be turned off", () => {
    setToastKind("fills", true);
    setToastKind("risk", true);
    expect(toastFor(fill)).toEqual({ tone: "info", text: "ema-btc: buy 0.50000 @ 43,210.50", group: "fills:ema-btc" });
    expect(toastFor(kill)?.tone).toBe("bad");
    setToastKind("fills", false);
    expect(toastFor(fill)).toBeNull();
    expect(toastFor(kill)).not.toBeNull();
    setToastKind("risk", false);
    expect(toastFor(kill)).toBeNull();
  });
});

describe("withToast", () => {
  const toast = (id: number, text: string, group?: string) => ({ id, tone: "info" as const, text, group });
  it("replaces a bot's earlier fill toast and counts it, and keeps the newest three", () => {
    let shown = withToast([], toast(1, "a: buy 1", "fills:a"));
    shown = withToast(shown, toast(2, "saved"));
    shown = withToast(shown, toast(3, "a: sell 1", "fills:a"));
    expect(shown.map((t) => [t.text, t.count])).toEqual([
      ["saved", 1],
      ["a: sell 1", 2],
    ]);
    shown = withToast(shown, toast(4, "b: buy 2", "fills:b"));
    shown = withToast(shown, toast(5, "applied"));
    expect(shown.map((t) => t.id)).toEqual([3, 4, 5]);
  });
});
