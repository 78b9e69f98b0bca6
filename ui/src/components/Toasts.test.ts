import { describe, expect, it } from "vitest";
import type { Envelope } from "../api/stream";
import { setToastKind } from "../lib/prefs";
import { toastFor } from "./Toasts";

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

describe("toasts", () => {
  it("raise one for a fill and a kill-switch, each kind can be turned off", () => {
    setToastKind("fills", true);
    setToastKind("risk", true);
    expect(toastFor(fill)).toEqual({ tone: "info", text: "ema-btc: buy 0.50000 @ 43,210.50" });
    expect(toastFor(kill)?.tone).toBe("bad");
    setToastKind("fills", false);
    expect(toastFor(fill)).toBeNull();
    expect(toastFor(kill)).not.toBeNull();
    setToastKind("risk", false);
    expect(toastFor(kill)).toBeNull();
  });
});
