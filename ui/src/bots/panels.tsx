// The panels of a bot's page: position and open orders, fills and trades,
// risk, log tail, timeline, manual order form.

import { useCallback, useMemo, useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";
import { allowed, useFills, useLogs, useMe, useRisk, useTrades, useVersions, type BotStatus } from "../api/hooks";
import { keys } from "../api/keys";
import type { Envelope } from "../api/stream";
import { useEvents } from "../api/streamContext";
import { Empty, ErrorText, Loading } from "../components/States";
import { formatDecimal, formatSigned, sign } from "../lib/decimal";
import { formatInUnit, readingOfLimit, ruleName } from "../lib/risk";
import { formatTime } from "../lib/time";


export function PositionPanel({ status }: { status: BotStatus }) {
  const me = useMe();
  const client = useQueryClient();
  const cancel = useMutation({
    mutationFn: (orderId: string) =>
      unwrap(api.DELETE("/api/v1/bots/{id}/orders/{order_id}", { params: { path: { id: status.id, order_id: orderId } } })),
    onSuccess: () => client.invalidateQueries({ queryKey: keys.status(status.id) }),
  });
  const canCancel = allowed(me.data, "DELETE /api/v1/bots/{id}/orders/{order_id}");
  return (
    <section className="panel" aria-label="Position and open orders">
      <h3>Position</h3>
      {status.positions.length === 0 ? (
        <Empty>Flat.</Empty>
      ) : (
        status.positions.map((p) => (
          <p key={p.symbol}>
            {formatDecimal(p.quantity, 5)} {p.symbol} @ {formatDecimal(p.avg_entry_price)}{" "}
            <span className={`pnl-${sign(p.unrealized_pnl)}`}>{formatSigned(p.unrealized_pnl)}</span>
          </p>
        ))
      )}
      <p className="muted">
        cash {formatDecimal(status.balance)} {status.quote} · fees {formatDecimal(status.fees_paid)}
      </p>
      <h3>Open orders</h3>
      {status.open_orders.length === 0 ? (
        <Empty>None.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Order</th>
              <th>Side</th>
              <th>Kind</th>
              <th>Filled of qty</th>
              <th>Price</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {status.open_orders.map((order) => (
              <tr key={order.id}>
                <td>
                  {order.id}
                  {order.client_tag && <small className="muted"> {order.client_tag}</small>}
                </td>
                <td>{order.side}</td>
                <td>{order.kind}</td>
                <td>
                  {formatDecimal(order.filled_quantity, 5)} of {formatDecimal(order.quantity, 5)}
                </td>
                <td>{formatDecimal(order.price)}</td>
                <td>
                  {order.reason?.startsWith("cancel requested") ? (
                    <span className="muted" title={order.reason}>
                      cancelling…
                    </span>
                  ) : (
                    canCancel && (
                      <button className="small" onClick={() => cancel.mutate(order.id)}>
                        cancel
                      </button>
                    )
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ErrorText error={cancel.error} />
    </section>
  );
}

export function FillsTable({ id }: { id: string }) {
  const fills = useFills(id);
  const rows = (fills.data?.pages ?? []).flatMap((page) => page.items);
  return (
    <section className="panel" aria-label="Fills">
      <h3>Fills</h3>
      {fills.isLoading ? (
        <Loading what="fills" />
      ) : rows.length === 0 ? (
        <Empty>No fills yet.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Time</th>
              <th>Side</th>
              <th>Qty</th>
              <th>Price</th>
              <th>Fee</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((fill, index) => (
                <tr key={`${fill.order_id}-${index}`}>
                  <td>{formatTime(fill.at)}</td>
                  <td>{fill.side}</td>
                  <td>{formatDecimal(fill.quantity, 5)}</td>
                  <td>{formatDecimal(fill.price)}</td>
                  <td>{formatDecimal(fill.fee, 4)}</td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
      {fills.hasNextPage && (
        <button className="small" onClick={() => fills.fetchNextPage()}>
          Load more
        </button>
      )}
    </section>
  );
}

export function TradesTable({ id }: { id: string }) {
  const trades = useTrades(id);
  const rows = (trades.data?.pages ?? []).flatMap((page) => page.items);
  return (
    <section className="panel" aria-label="Trades">
      <h3>Trades</h3>
      {trades.isLoading ? (
        <Loading what="trades" />
      ) : rows.length === 0 ? (
        <Empty>No round trip closed yet.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Closed</th>
              <th>Qty</th>
              <th>Entry</th>
              <th>Exit</th>
              <th>PnL</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((trade, index) => (
                <tr key={`${trade.exit_at}-${index}`}>
                  <td>{formatTime(trade.exit_at)}</td>
                  <td>{formatDecimal(trade.quantity, 5)}</td>
                  <td>{formatDecimal(trade.entry_price)}</td>
                  <td>{formatDecimal(trade.exit_price)}</td>
                  <td className={`pnl-${sign(trade.pnl)}`}>{formatSigned(trade.pnl)}</td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
      {trades.hasNextPage && (
        <button className="small" onClick={() => trades.fetchNextPage()}>
          Load more
        </button>
      )}
    </section>
  );
}

export function RiskPanel({ id }: { id: string }) {
  const risk = useRisk(id);
  if (risk.isLoading) return <Loading what="risk" />;
  if (!risk.data) return <ErrorText error={risk.error} />;
  const view = risk.data;
  return (
    <section className="panel" aria-label="Risk">
      <h3>Risk</h3>
      <p>
        trading state <span className={`badge badge-${view.trading_state.toLowerCase()}`}>{view.trading_state}</span>
        {view.kill_switch.engaged && (
          <span className="warn" role="status">
            {" "}
            kill-switch engaged: {view.kill_switch.reason}
          </span>
        )}
      </p>
      {view.rules.length === 0 ? (
        <Empty>
          No drawdown, daily-loss or losing-streak rule set. Every order still meets the order limits of the config's
          risk section.
        </Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Rule</th>
              <th>Reading</th>
              <th>Limit</th>
              <th>Action</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {view.rules.map((rule) => (
              <tr key={rule.rule} className={rule.status === "breached" ? "bad" : ""}>
                <td>{ruleName(rule.rule)}</td>
                <td>{formatInUnit(rule.observed, rule.unit)}</td>
                <td>{formatInUnit(rule.limit, rule.unit)}</td>
                <td>{rule.action}</td>
                <td>{rule.status}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {view.recent_violations.length > 0 && (
        <ul className="compact">
          {view.recent_violations.slice(0, 5).map((v, index) => (
            <li key={index}>
              {formatTime(v.at)}: {ruleName(v.rule)} {readingOfLimit(v)} →{" "}
              {v.action}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function LogTail({ id }: { id: string }) {
  const [level, setLevel] = useState("info");
  const logs = useLogs(id, level);
  return (
    <section className="panel" aria-label="Logs">
      <h3>
        Logs{" "}
        <select aria-label="Log level" value={level} onChange={(e) => setLevel(e.target.value)}>
          {["error", "warn", "info", "debug"].map((l) => (
            <option key={l}>{l}</option>
          ))}
        </select>
      </h3>
      {logs.isLoading ? (
        <Loading what="logs" />
      ) : (logs.data?.items.length ?? 0) === 0 ? (
        <Empty>No lines at this level.</Empty>
      ) : (
        <ol className="log">
          {logs.data?.items.slice(0, 200).map((line) => (
            <li key={line.id} className={`log-${line.level}`}>
              <time dateTime={line.at}>{formatTime(line.at)}</time> <b>{line.level}</b> {line.message}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

/** What the timeline shows of an event that no list keeps (the rest come
 * from the fills, trades, versions and risk the page already holds). */
function describeLive(event: Envelope): string | null {
  switch (event.type) {
    case "bot.state_changed":
      return `${event.data.from} → ${event.data.to} (${event.data.reason})`;
    case "risk.state_changed":
      return `trading state ${event.data.from} → ${event.data.to}`;
    case "risk.kill_switch":
      return `kill-switch: ${event.data.reason}`;
    case "order.rejected":
      return `order refused by ${event.data.check}: ${event.data.message}`;
    default:
      return null;
  }
}

interface TimelineItem {
  key: string;
  at: string;
  text: string;
}

const TIMELINE_SIZE = 100;

/** Items newest first, at most TIMELINE_SIZE of them. */
const newestFirst = (items: TimelineItem[]) =>
  items.sort((a, b) => Date.parse(b.at) - Date.parse(a.at)).slice(0, TIMELINE_SIZE);

/** One of the timeline's two lists. */
function TimelineList({ label, items, empty }: { label: string; items: TimelineItem[]; empty: string }) {
  return (
    <div className="timeline-list">
      <h4>{label}</h4>
      {items.length === 0 ? (
        <p className="muted">{empty}</p>
      ) : (
        <ol className="timeline" aria-label={label}>
          {items.map((item) => (
            <li key={item.key}>
              <time>{formatTime(item.at)}</time> {item.text}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

/** The bot's story, newest first, on its two clocks: what happened in the
 * market (fills, round trips, risk violations) at the time of the candle
 * it happened on, and what happened to the bot (config versions, and the
 * state changes, kill-switches and refused orders seen while the page is
 * open: the log tail holds the earlier ones) at the host's time. The two are kept apart: a
 * feed replayed faster than real time runs its candles' clock ahead of the
 * host's, and one list sorted on both would bury the bot's own changes. */
export function Timeline({ id }: { id: string }) {
  const fills = useFills(id);
  const trades = useTrades(id);
  const versions = useVersions(id);
  const risk = useRisk(id);
  const [live, setLive] = useState<TimelineItem[]>([]);
  const listener = useCallback(
    (event: Envelope) => {
      if (event.bot_id !== id) return;
      const text = describeLive(event);
      if (text) setLive((shown) => [{ key: `e${event.seq}`, at: event.ts, text }, ...shown].slice(0, TIMELINE_SIZE));
    },
    [id],
  );
  useEvents(listener);

  const market = useMemo(() => {
    const all: TimelineItem[] = [];
    for (const fill of (fills.data?.pages ?? []).flatMap((p) => p.items)) {
      all.push({ key: `f${fill.order_id}-${fill.at}`, at: fill.at, text: `filled ${fill.side} ${formatDecimal(fill.quantity, 5)} @ ${formatDecimal(fill.price)}` });
    }
    for (const trade of (trades.data?.pages ?? []).flatMap((p) => p.items)) {
      all.push({ key: `t${trade.exit_at}-${trade.entry_at}`, at: trade.exit_at, text: `round trip closed, PnL ${formatSigned(trade.pnl)}` });
    }
    for (const v of risk.data?.recent_violations ?? []) {
      all.push({
        key: `r${v.rule}-${v.at}`,
        at: v.at,
        text: `${ruleName(v.rule)} breached: ${readingOfLimit(v)} (${v.action})`,
      });
    }
    return newestFirst(all);
  }, [fills.data, trades.data, risk.data]);
  const host = useMemo(() => {
    const all: TimelineItem[] = [...live];
    for (const version of versions.data?.items ?? []) {
      all.push({ key: `v${version.version}`, at: version.created_at, text: `config version ${version.version} by ${version.actor}` });
    }
    return newestFirst(all);
  }, [live, versions.data]);

  return (
    <section className="panel" aria-label="Timeline">
      <h3>Timeline</h3>
      <div className="timeline-lists">
        <TimelineList label="Market (candle time)" items={market} empty="Fills, round trips and risk violations appear here." />
        <TimelineList label="Bot (host time)" items={host} empty="Config versions; state changes, kill-switches and refused orders while this page is open." />
      </div>
    </section>
  );
}

type ManualOrder = Schemas["ManualOrder"];

export function ManualOrderForm({ id }: { id: string }) {
  const [order, setOrder] = useState<{ side: string; kind: string; quantity: string; price: string }>({
    side: "buy",
    kind: "market",
    quantity: "",
    price: "",
  });
  const client = useQueryClient();
  const place = useMutation({
    mutationFn: () => {
      const body: ManualOrder = {
        side: order.side as ManualOrder["side"],
        kind: order.kind as ManualOrder["kind"],
        quantity: order.quantity,
        // A price left empty is left out: the server says a limit needs one.
        ...(order.kind !== "market" && order.price.trim() !== "" ? { price: order.price } : {}),
      };
      return unwrap(api.POST("/api/v1/bots/{id}/orders", { params: { path: { id } }, body }));
    },
    onSuccess: () => client.invalidateQueries({ queryKey: keys.status(id) }),
  });
  return (
    <section className="panel" aria-label="Manual order">
      <h3>Manual order</h3>
      <form
        className="inline-form"
        onSubmit={(event) => {
          event.preventDefault();
          place.mutate();
        }}
      >
        <select aria-label="Side" value={order.side} onChange={(e) => setOrder({ ...order, side: e.target.value })}>
          <option>buy</option>
          <option>sell</option>
        </select>
        <select aria-label="Kind" value={order.kind} onChange={(e) => setOrder({ ...order, kind: e.target.value })}>
          <option>market</option>
          <option>limit</option>
          <option>stop</option>
        </select>
        <input
          aria-label="Quantity"
          placeholder="quantity"
          inputMode="decimal"
          value={order.quantity}
          onChange={(e) => setOrder({ ...order, quantity: e.target.value })}
        />
        {order.kind !== "market" && (
          <input
            aria-label="Price"
            placeholder="price"
            inputMode="decimal"
            value={order.price}
            onChange={(e) => setOrder({ ...order, price: e.target.value })}
          />
        )}
        <button type="submit" className="primary" disabled={place.isPending}>
          Place
        </button>
      </form>
      {place.data && (
        <p role="status">
          Order {place.data.id}: {place.data.status}
        </p>
      )}
      <ErrorText error={place.error} />
    </section>
  );
}
