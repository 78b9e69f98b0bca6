import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { QueryClient } from "@tanstack/react-query";
import { APPLY_EVERY_MS, applyEvent, applyEvents, EventStream, type Envelope } from "./stream";
import { keys } from "./keys";
import { session } from "./session";

/** A WebSocket the test plays the server of. */
class FakeSocket {
  static OPEN = 1;
  static instances: FakeSocket[] = [];
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((message: { data: string }) => void) | null = null;
  onclose: ((close: { code: number; reason: string }) => void) | null = null;

  constructor(readonly url: string) {
    FakeSocket.instances.push(this);
  }
  send(text: string) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = 3;
  }
  // The server's side:
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  push(message: unknown) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop(code = 1006, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  ops(op: string) {
    return this.sent.filter((m) => m.op === op);
  }
}

const summary = (id: string, state: string, equity = "100") =>
  ({ id, state, equity, pnl: "0", equity_trail: [], allowed_commands: [] }) as unknown as Record<string, unknown>;

const updated = (seq: number, id: string, state: string, equity = "100"): Envelope =>
  ({ seq, ts: "2026-01-01T00:00:00Z", type: "bot.updated", channel: "bots", bot_id: id, data: summary(id, state, equity) }) as Envelope;

describe("EventStream", () => {
  let client: QueryClient;
  let stream: EventStream;

  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.instances = [];
    vi.stubGlobal("WebSocket", FakeSocket);
    session.signIn("token-1");
    client = new QueryClient();
    client.setQueryData(keys.bots, [summary("a", "running"), summary("b", "running")]);
    stream = new EventStream(client, "ws://test/api/v1/ws");
  });

  afterEach(() => {
    stream.stop();
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  const connected = (nextSeq = 1) => {
    const socket = FakeSocket.instances.at(-1)!;
    socket.open();
    socket.push({ type: "authenticated", next_seq: nextSeq });
    return socket;
  };
  const bots = () => client.getQueryData<{ id: string; state: string; equity: string }[]>(keys.bots)!;

  it("authenticates with its first message, then subscribes, then patches the cache in place", () => {
    stream.start();
    const socket = connected();
    expect(socket.sent[0]).toEqual({ op: "auth", token: "token-1" });
    expect(socket.ops("subscribe")).toEqual([{ op: "subscribe", channels: ["bots", "system"], bots: [] }]);
    socket.push(updated(1, "a", "paused", "101.5"));
    expect(bots().find((b) => b.id === "a")).toMatchObject({ state: "running" }); // applied in a batch
    vi.advanceTimersByTime(APPLY_EVERY_MS);
    expect(bots().find((b) => b.id === "a")).toMatchObject({ state: "paused", equity: "101.5" });
    expect(stream.health).toMatchObject({ connected: true, lastSeq: 1, received: 1 });
  });

  it("resumes after the last event it saw and applies nothing twice", () => {
    stream.start();
    let socket = connected();
    socket.push(updated(1, "a", "paused"));
    socket.push(updated(2, "b", "paused"));
    socket.drop();
    vi.advanceTimersByTime(APPLY_EVERY_MS); // what arrived before the drop is applied
    expect(stream.health.connected).toBe(false);

    vi.advanceTimersByTime(300); // the first retry comes after 250 ms
    expect(FakeSocket.instances).toHaveLength(2);
    socket = connected(50);
    expect(socket.ops("resume")).toEqual([{ op: "resume", after_seq: 2 }]);
    // The server replays from 1 (overlap): the old ones are ignored.
    const seen: number[] = [];
    stream.onEvent((event) => seen.push(event.seq));
    socket.push(updated(1, "a", "stopped"));
    socket.push(updated(2, "b", "stopped"));
    socket.push(updated(3, "b", "running"));
    vi.advanceTimersByTime(APPLY_EVERY_MS);
    expect(seen).toEqual([3]);
    expect(bots().map((b) => b.state)).toEqual(["paused", "running"]);
    expect(stream.health).toMatchObject({ reconnects: 1, lastSeq: 3 });
  });

  it("refetches everything when the server no longer holds what was missed", () => {
    stream.start();
    const socket = connected();
    const invalidate = vi.spyOn(client, "invalidateQueries");
    socket.push({ seq: 9, ts: "2026-01-01T00:00:00Z", type: "lagged", channel: "system", data: { reason: "resume", missed: 3 } });
    expect(invalidate).toHaveBeenCalledWith();
  });

  it("follows a view's interest and subscribes it again after a reconnect", () => {
    stream.start();
    let socket = connected();
    const unfollow = stream.follow("bot:a", { channels: ["orders"], bots: ["a"] });
    expect(socket.ops("subscribe").at(-1)).toEqual({ op: "subscribe", channels: ["orders"], bots: ["a"] });
    socket.push({ type: "subscribed", id: 1 }); // base
    socket.push({ type: "subscribed", id: 2 }); // bot:a
    unfollow();
    expect(socket.ops("unsubscribe")).toEqual([{ op: "unsubscribe", id: 2 }]);

    stream.follow("bot:b", { channels: ["orders"], bots: ["b"] });
    socket.drop();
    vi.advanceTimersByTime(300);
    socket = connected();
    expect(socket.ops("subscribe").map((m) => m.bots)).toEqual([[], ["b"]]);
  });

  it("goes back to the login screen when the server closes the stream as revoked", () => {
    stream.start();
    const socket = connected();
    socket.drop(4401, "token revoked");
    expect(session.token()).toBeNull();
    expect(session.reason()).toContain("token revoked");
    vi.advanceTimersByTime(10_000);
    expect(FakeSocket.instances).toHaveLength(1); // no reconnect without a token
  });
});

describe("applyEvent", () => {
  const page = <T,>(items: T[], next_cursor: string | null = null) => ({ pages: [{ items, next_cursor }], pageParams: [undefined] });

  it("puts a new fill and trade first (lists are newest first), and keeps the open orders in step", () => {
    const client = new QueryClient();
    client.setQueryData(keys.fills("a"), page([{ order_id: "1" }], "cursor-older"));
    client.setQueryData(keys.trades("a"), page([{ pnl: "1" }]));
    client.setQueryData(keys.status("a"), { id: "a", open_orders: [{ id: "2", status: "open" }] });
    applyEvent(client, {
      seq: 1,
      ts: "t",
      type: "order.filled",
      channel: "orders",
      bot_id: "a",
      data: { order: { id: "2", status: "filled" }, fill: { order_id: "2" } },
    } as unknown as Envelope);
    applyEvent(client, { seq: 2, ts: "t", type: "trade", channel: "trades", bot_id: "a", data: { pnl: "2" } } as unknown as Envelope);
    expect(client.getQueryData<ReturnType<typeof page>>(keys.fills("a"))!.pages[0].items).toEqual([
      { order_id: "2" },
      { order_id: "1" },
    ]);
    expect(client.getQueryData<ReturnType<typeof page>>(keys.trades("a"))!.pages[0].items).toEqual([{ pnl: "2" }, { pnl: "1" }]);
    expect(client.getQueryData<{ open_orders: unknown[] }>(keys.status("a"))!.open_orders).toEqual([]);
  });

  it("keeps a partly filled (live) order open, with what has filled", () => {
    const client = new QueryClient();
    client.setQueryData(keys.status("a"), { id: "a", open_orders: [{ id: "2", status: "open", filled_quantity: "0" }] });
    client.setQueryData(keys.orders("a", "open"), page([{ id: "2", status: "open", filled_quantity: "0" }]));
    client.setQueryData(keys.orders("a", "closed"), page([]));
    const partly = { id: "2", status: "open", filled_quantity: "0.4" };
    applyEvent(client, {
      seq: 1,
      ts: "t",
      type: "order.filled",
      channel: "orders",
      bot_id: "a",
      data: { order: partly, fill: { order_id: "2" } },
    } as unknown as Envelope);
    expect(client.getQueryData<{ open_orders: unknown[] }>(keys.status("a"))!.open_orders).toEqual([partly]);
    expect(client.getQueryData<ReturnType<typeof page>>(keys.orders("a", "open"))!.pages[0].items).toEqual([partly]);
    expect(client.getQueryData<ReturnType<typeof page>>(keys.orders("a", "closed"))!.pages[0].items).toEqual([]);
  });

  it("drops a deleted bot from the fleet", () => {
    const client = new QueryClient();
    client.setQueryData(keys.bots, [{ id: "a" }, { id: "b" }]);
    applyEvent(client, { seq: 1, ts: "t", type: "bot.deleted", channel: "bots", bot_id: "a", data: {} } as unknown as Envelope);
    expect(client.getQueryData(keys.bots)).toEqual([{ id: "b" }]);
  });
});

describe("applyEvents", () => {
  it("applies a batch in order, the fleet list copied once for its summaries", () => {
    const client = new QueryClient();
    client.setQueryData(keys.bots, [summary("a", "running"), summary("b", "running")]);
    const writes = vi.spyOn(client, "setQueryData");
    applyEvents(client, [
      updated(1, "a", "running", "101"),
      updated(2, "b", "paused", "99"),
      updated(3, "a", "running", "102"),
      updated(4, "c", "stopped", "5"),
    ]);
    expect(writes.mock.calls.filter(([key]) => key === keys.bots)).toHaveLength(1);
    const bots = client.getQueryData<{ id: string; state: string; equity: string }[]>(keys.bots)!;
    expect(bots.map((b) => [b.id, b.state, b.equity])).toEqual([
      ["a", "running", "102"],
      ["b", "paused", "99"],
      ["c", "stopped", "5"],
    ]);
  });

  it("keeps a deletion after the updates before it", () => {
    const client = new QueryClient();
    client.setQueryData(keys.bots, [summary("a", "running"), summary("b", "running")]);
    applyEvents(client, [
      updated(1, "a", "stopped"),
      { seq: 2, ts: "t", type: "bot.deleted", channel: "bots", bot_id: "a", data: {} } as unknown as Envelope,
    ]);
    expect(client.getQueryData<{ id: string }[]>(keys.bots)!.map((b) => b.id)).toEqual(["b"]);
  });
});
