// The one WebSocket: authenticates with its first message, subscribes by
// channel and bot, and patches the query cache in place with every event,
// so nothing the stream delivers is ever polled. After a reconnect it
// resumes after the last sequence number it saw: nothing is missed or
// applied twice (events at or below that number are ignored), and if the
// server no longer holds what was missed, every query is refetched.

import { notifyManager, type QueryClient } from "@tanstack/react-query";
import type { Schemas } from "./client";
import { keys } from "./keys";
import { session } from "./session";

export type Envelope = Schemas["Envelope"];
type BotSummary = Schemas["BotSummary"];
type BotStatus = Schemas["BotStatus"];

/** What a view of the stream wants: channels (empty = all) and bots (empty = all). */
export interface Interest {
  channels: string[];
  bots: string[];
}

export interface StreamHealth {
  connected: boolean;
  reconnects: number;
  lastSeq: number;
  /** The server's last sequence number at its last heartbeat. */
  serverSeq: number;
  /** Events received since the page opened. */
  received: number;
  /** When the last event or heartbeat arrived (ms since epoch). */
  lastMessageAt: number;
}

type Listener = (event: Envelope) => void;

/** Always wanted: bots and host-wide events for the fleet. */
const BASE: Interest = { channels: ["bots", "system"], bots: [] };
const RETRY_MS = [250, 500, 1_000, 2_000, 5_000];
/** Events are applied in batches at most this often: with a thousand bots
 * the stream brings hundreds a second, and each batch is one render. */
export const APPLY_EVERY_MS = 100;

export class EventStream {
  private socket: WebSocket | null = null;
  private interests = new Map<string, Interest>();
  /** The server's id of each followed interest, once it answered. */
  private ids = new Map<string, number>();
  /** Interests subscribed and not yet answered, in order. */
  private pending: string[] = [];
  private listeners = new Set<Listener>();
  private healthListeners = new Set<() => void>();
  private attempt = 0;
  private closed = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Events received and not applied yet, in sequence order. */
  private queue: Envelope[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  health: StreamHealth = {
    connected: false,
    reconnects: 0,
    lastSeq: 0,
    serverSeq: 0,
    received: 0,
    lastMessageAt: 0,
  };

  constructor(
    private readonly client: QueryClient,
    private readonly url: string,
  ) {
    this.interests.set("base", BASE);
  }

  start() {
    this.closed = false;
    this.connect();
  }

  stop() {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.flush();
    this.socket?.close(1000, "bye");
    this.socket = null;
  }

  /** Follow `interest` under `name` until the returned function is called.
   * The new subscription is made before an old one is dropped, so no event
   * of a channel both cover is lost in between. */
  follow(name: string, interest: Interest): () => void {
    this.unfollow(name);
    this.interests.set(name, interest);
    this.subscribe(name, interest);
    return () => this.unfollow(name);
  }

  private unfollow(name: string) {
    this.interests.delete(name);
    const id = this.ids.get(name);
    if (id !== undefined) {
      this.send({ op: "unsubscribe", id });
      this.ids.delete(name);
    }
  }

  private subscribe(name: string, interest: Interest) {
    if (this.socket?.readyState !== WebSocket.OPEN) return; // done on (re)connect
    this.pending.push(name);
    this.send({ op: "subscribe", channels: interest.channels, bots: interest.bots });
  }

  onEvent(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onHealth(listener: () => void): () => void {
    this.healthListeners.add(listener);
    return () => this.healthListeners.delete(listener);
  }

  private setHealth(patch: Partial<StreamHealth>) {
    this.health = { ...this.health, ...patch };
    for (const listener of this.healthListeners) listener();
  }

  private connect() {
    const token = session.token();
    if (!token || this.closed) return;
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ op: "auth", token }));
    socket.onmessage = (message) => this.receive(socket, message.data as string);
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.setHealth({ connected: false });
      if (close.code === 4401) {
        session.signOut(`The server closed the live stream: ${close.reason || "token refused"}.`);
        return;
      }
      if (!this.closed) this.retry();
    };
  }

  private retry() {
    const delay = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
    this.attempt += 1;
    this.timer = setTimeout(() => {
      this.setHealth({ reconnects: this.health.reconnects + 1 });
      this.connect();
    }, delay);
  }

  private send(message: unknown) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  /** Subscribe every interest on a fresh connection. */
  private subscribeAll() {
    this.ids.clear();
    this.pending = [];
    for (const [name, interest] of this.interests) this.subscribe(name, interest);
  }

  private receive(socket: WebSocket, text: string) {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const now = Date.now();
    switch (message.type) {
      case "authenticated": {
        this.attempt = 0;
        const resumeFrom = this.health.lastSeq;
        this.setHealth({ connected: true, lastMessageAt: now });
        this.subscribeAll();
        if (resumeFrom > 0) {
          socket.send(JSON.stringify({ op: "resume", after_seq: resumeFrom }));
        } else {
          this.setHealth({ lastSeq: Math.max(0, Number(message.next_seq) - 1) });
        }
        return;
      }
      case "heartbeat":
        this.setHealth({ serverSeq: Number(message.last_seq), lastMessageAt: now });
        return;
      case "subscribed": {
        const name = this.pending.shift();
        const id = Number(message.id);
        if (name !== undefined && this.interests.has(name)) {
          this.ids.set(name, id);
        } else {
          this.send({ op: "unsubscribe", id }); // given up meanwhile
        }
        return;
      }
      case "unsubscribed":
      case "resumed":
      case "error":
        return;
    }
    if (typeof message.seq !== "number") return;
    const event = message as unknown as Envelope;
    if (event.type === "lagged") {
      const reason = (event.data as Schemas["LaggedView"]).reason;
      if (reason === "resume" || reason === "slow") {
        // Events were lost for good: whatever they patched is refetched.
        void this.client.invalidateQueries();
      }
      return;
    }
    if (event.seq <= this.health.lastSeq) return; // already applied
    this.setHealth({
      lastSeq: event.seq,
      received: this.health.received + 1,
      lastMessageAt: now,
    });
    this.queue.push(event);
    this.flushTimer ??= setTimeout(() => this.flush(), APPLY_EVERY_MS);
  }

  /** Apply the waiting events to the cache, all in one notification. */
  flush() {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const events = this.queue;
    this.queue = [];
    if (events.length === 0) return;
    notifyManager.batch(() => applyEvents(this.client, events));
    for (const event of events) {
      for (const listener of this.listeners) listener(event);
    }
  }
}

/** Merge bots' summaries into the fleet list (one copy of it, however
 * many) and into their statuses. */
function patchBots(client: QueryClient, summaries: BotSummary[]) {
  client.setQueryData<BotSummary[]>(keys.bots, (bots) => {
    if (!bots) return bots;
    const next = bots.slice();
    const index = new Map(next.map((bot, i) => [bot.id, i]));
    let added = false;
    for (const summary of summaries) {
      const at = index.get(summary.id);
      if (at === undefined) {
        index.set(summary.id, next.push(summary) - 1);
        added = true;
      } else {
        next[at] = { ...next[at], ...summary };
      }
    }
    return added ? next.sort((a, b) => a.id.localeCompare(b.id)) : next;
  });
  for (const summary of summaries) {
    client.setQueryData<BotStatus>(keys.status(summary.id), (status) =>
      status ? { ...status, ...summary } : status,
    );
  }
}

/** Patch the cache with a batch of events, in order; the fleet list is
 * copied once per run of bot summaries, not once per event. */
export function applyEvents(client: QueryClient, events: Envelope[]) {
  const summaries = new Map<string, BotSummary>();
  const patchWaiting = () => {
    if (summaries.size === 0) return;
    patchBots(client, [...summaries.values()]);
    summaries.clear();
  };
  for (const event of events) {
    const summary =
      event.type === "bot.created" || event.type === "bot.updated"
        ? event.data
        : event.type === "bot.state_changed"
          ? event.data.bot
          : null;
    if (summary) {
      summaries.set(summary.id, { ...summaries.get(summary.id), ...summary });
      if (event.type === "bot.state_changed") void client.invalidateQueries({ queryKey: keys.risk(summary.id) });
      continue;
    }
    patchWaiting();
    applyEvent(client, event);
  }
  patchWaiting();
}

/** Put a page item first in an infinite list (newest first). */
function prepend<T>(client: QueryClient, key: readonly unknown[], item: T, same?: (a: T) => boolean) {
  client.setQueryData<{ pages: { items: T[] }[]; pageParams: unknown[] }>(key, (data) => {
    if (!data || data.pages.length === 0) return data;
    const [first, ...rest] = data.pages;
    const items = same ? first.items.filter((existing) => !same(existing)) : first.items;
    return { ...data, pages: [{ ...first, items: [item, ...items] }, ...rest] };
  });
}

/** Patch the cache with one event. Exported for tests. */
export function applyEvent(client: QueryClient, event: Envelope) {
  const bot = event.bot_id ?? "";
  switch (event.type) {
    case "bot.created":
    case "bot.updated":
      patchBots(client, [event.data]);
      return;
    case "bot.state_changed":
      patchBots(client, [event.data.bot]);
      void client.invalidateQueries({ queryKey: keys.risk(bot) });
      return;
    case "bot.deleted":
      client.setQueryData<BotSummary[]>(keys.bots, (bots) => bots?.filter((b) => b.id !== bot));
      client.removeQueries({ queryKey: keys.bot(bot) });
      return;
    case "config.updated":
      void client.invalidateQueries({ queryKey: keys.config(bot) });
      void client.invalidateQueries({ queryKey: keys.versions(bot) });
      return;
    case "order.placed":
    case "order.cancelled": {
      const order = event.data;
      for (const status of ["all", order.status === "open" ? "open" : "closed"] as const) {
        prepend(client, keys.orders(bot, status), order, (o: Schemas["OrderView"]) => o.id === order.id);
      }
      if (event.type === "order.cancelled") {
        client.setQueryData<{ pages: { items: Schemas["OrderView"][] }[]; pageParams: unknown[] }>(
          keys.orders(bot, "open"),
          (data) =>
            data && {
              ...data,
              pages: data.pages.map((p) => ({ ...p, items: p.items.filter((o) => o.id !== order.id) })),
            },
        );
      }
      patchOpenOrders(client, bot, order);
      return;
    }
    case "order.filled": {
      // A partial fill (live orders) leaves the order open.
      const { order, fill } = event.data;
      prepend(client, keys.fills(bot), fill);
      for (const status of ["all", order.status === "open" ? "open" : "closed"] as const) {
        prepend(client, keys.orders(bot, status), order, (o: Schemas["OrderView"]) => o.id === order.id);
      }
      patchOpenOrders(client, bot, order);
      return;
    }
    case "trade":
      prepend(client, keys.trades(bot), event.data);
      return;
    case "backtest.progress":
    case "backtest.finished": {
      const job = event.data;
      const kind = job.optimization ? "optimizations" : "backtests";
      client.setQueryData(keys.job(kind, job.id), job);
      client.setQueryData<Schemas["BacktestView"][]>(keys.jobs(kind), (jobs) =>
        jobs && [job, ...jobs.filter((j) => j.id !== job.id)].sort((a, b) => b.created.localeCompare(a.created)),
      );
      return;
    }
    case "risk.violation":
    case "risk.state_changed":
    case "risk.kill_switch":
      void client.invalidateQueries({ queryKey: keys.risk(bot) });
      return;
    case "log": {
      const line = event.data;
      for (const level of ["trace", "debug", "info", "warn", "error"]) {
        if (!passes(line.level, level)) continue;
        client.setQueryData<Schemas["LogLineViewPage"]>(keys.logs(bot, level), (page) =>
          page ? { ...page, items: [line, ...page.items].slice(0, 500) } : page,
        );
      }
      return;
    }
    case "emergency.engaged":
    case "emergency.reset":
      void client.invalidateQueries({ queryKey: keys.emergency });
      return;
    default:
      return;
  }
}

const LEVELS = ["trace", "debug", "info", "warn", "error"];

/** Whether a line at `level` shows under the filter `threshold`. */
function passes(level: string, threshold: string): boolean {
  return LEVELS.indexOf(level) >= LEVELS.indexOf(threshold);
}

/** Keep the status's open orders in step with an order event. */
function patchOpenOrders(client: QueryClient, bot: string, order: Schemas["OrderView"]) {
  client.setQueryData<BotStatus>(keys.status(bot), (status) => {
    if (!status) return status;
    const others = status.open_orders.filter((o) => o.id !== order.id);
    return { ...status, open_orders: order.status === "open" ? [order, ...others] : others };
  });
}
