// The fleet: every bot with its state, money and warnings, totals,
// filters, commands per bot and for a selection, and the emergency stop's
// progress. Rows are virtualised: a thousand bots scroll smoothly.

import { useCallback, useMemo, useRef, useState } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import {
  allowed,
  useBots,
  useBulkCommand,
  useCommand,
  useEmergency,
  useMe,
  type BotSummary,
  type Command,
} from "../api/hooks";
import { useFollow } from "../api/streamContext";
import { Empty, ErrorText, Loading } from "../components/States";
import { formatDecimal, formatSigned, sign, sumDecimals } from "../lib/decimal";
import { Confirm } from "../components/Confirm";
import { notify } from "../components/Toasts";
import { BotRow } from "./BotRow";
import { consequence, DANGEROUS, heldByEmergency } from "./commands";
import { EmergencyBanner } from "./Emergency";

const ROW_HEIGHT = 52;
const COMMANDS: Command[] = ["start", "stop", "pause", "resume", "reset", "kill"];

interface Filters {
  state: string;
  mode: string;
  strategy: string;
  text: string;
}

function matches(bot: BotSummary, filters: Filters): boolean {
  const text = filters.text.trim().toLowerCase();
  return (
    (!filters.state || bot.state === filters.state) &&
    (!filters.mode || bot.mode === filters.mode) &&
    (!filters.strategy || bot.strategy.startsWith(filters.strategy)) &&
    (!text || `${bot.id} ${bot.name} ${bot.symbol}`.toLowerCase().includes(text))
  );
}

export function FleetPage() {
  useFollow("fleet", { channels: ["bots", "system"], bots: [] });
  const bots = useBots();
  const me = useMe();
  const command = useCommand();
  const bulk = useBulkCommand();
  const [filters, setFilters] = useState<Filters>({ state: "", mode: "", strategy: "", text: "" });
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const scroller = useRef<HTMLDivElement>(null);

  const shown = useMemo(() => (bots.data ?? []).filter((bot) => matches(bot, filters)), [bots.data, filters]);
  const emergency = useEmergency();
  const engaged = emergency.data?.engaged;
  const permitted = useMemo(
    () =>
      new Set(
        COMMANDS.filter((c) => allowed(me.data, `POST /api/v1/bots/{id}/${c}`) && !heldByEmergency(c, engaged)),
      ),
    [me.data, engaged],
  );
  const strategies = useMemo(
    () => [...new Set((bots.data ?? []).map((bot) => bot.strategy.split(" ")[0]))].sort(),
    [bots.data],
  );
  const totals = useMemo(() => {
    const all = bots.data ?? [];
    const byState = new Map<string, number>();
    for (const bot of all) byState.set(bot.state, (byState.get(bot.state) ?? 0) + 1);
    return {
      count: all.length,
      byState: [...byState.entries()].sort(),
      equity: sumDecimals(all.map((bot) => bot.equity)),
      pnl: sumDecimals(all.map((bot) => bot.pnl)),
    };
  }, [bots.data]);

  const virtualizer = useVirtualizer({
    count: shown.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 6,
  });

  const onSelect = useCallback((id: string, on: boolean) => {
    setSelected((current) => {
      const next = new Set(current);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });
  }, []);
  // A command for one bot or several; a dangerous one asks first.
  const [asking, setAsking] = useState<{ command: Command; bots: string[] } | null>(null);
  const send = useCallback(
    (name: Command, ids: string[]) =>
      ids.length === 1 ? command.mutate({ id: ids[0], command: name }) : bulk.mutate({ command: name, bots: ids }),
    [command, bulk],
  );
  const onCommand = useCallback(
    (id: string, name: Command) => (DANGEROUS.has(name) ? setAsking({ command: name, bots: [id] }) : send(name, [id])),
    [send],
  );
  const runOnSelection = (name: Command) => {
    const chosen = shown.filter((bot) => selected.has(bot.id));
    const targets = chosen.filter((bot) => bot.allowed_commands.includes(name)).map((bot) => bot.id);
    const skipped = chosen.filter((bot) => !bot.allowed_commands.includes(name));
    if (skipped.length > 0) {
      const which = skipped.slice(0, 5).map((bot) => `${bot.id} (${bot.state})`).join(", ");
      notify(
        targets.length === 0 ? "bad" : "info",
        `${targets.length === 0 ? "None of the selection" : `${skipped.length} of the selection`} can ${name} now: ${which}${skipped.length > 5 ? ", …" : ""}`,
      );
    }
    if (targets.length === 0) return;
    if (DANGEROUS.has(name)) setAsking({ command: name, bots: targets });
    else send(name, targets);
  };
  const bulkFailures = (bulk.data?.results ?? []).filter((result) => !result.ok);

  if (bots.isLoading) return <Loading what="bots" />;
  if (bots.error) return <ErrorText error={bots.error} />;

  return (
    <section className="fleet" aria-label="Fleet">
      <EmergencyBanner />
      <div className="totals" aria-label="Totals">
        <span>
          <strong>{totals.count}</strong> bots
        </span>
        {totals.byState.map(([state, count]) => (
          <span key={state} className={`badge badge-${state}`}>
            {count} {state}
          </span>
        ))}
        <span>
          equity <strong>{formatDecimal(totals.equity)}</strong>
        </span>
        <span className={`pnl-${sign(totals.pnl)}`}>
          PnL <strong>{formatSigned(totals.pnl)}</strong>
        </span>
      </div>
      <div className="filters">
        <input
          placeholder="Search bots"
          aria-label="Search bots"
          value={filters.text}
          onChange={(e) => setFilters({ ...filters, text: e.target.value })}
        />
        <select aria-label="State" value={filters.state} onChange={(e) => setFilters({ ...filters, state: e.target.value })}>
          <option value="">any state</option>
          {["running", "paused", "stopped", "killed", "error"].map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        <select aria-label="Mode" value={filters.mode} onChange={(e) => setFilters({ ...filters, mode: e.target.value })}>
          <option value="">any mode</option>
          <option>paper</option>
          <option>live</option>
        </select>
        <select
          aria-label="Strategy"
          value={filters.strategy}
          onChange={(e) => setFilters({ ...filters, strategy: e.target.value })}
        >
          <option value="">any strategy</option>
          {strategies.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        {selected.size > 0 && (
          <span className="bulk" aria-label="Selection">
            {selected.size} selected:
            {COMMANDS.filter((c) => permitted.has(c)).map((name) => (
              <button key={name} className={name === "kill" ? "small danger" : "small"} onClick={() => runOnSelection(name)}>
                {name}
              </button>
            ))}
            <button className="small" onClick={() => setSelected(new Set())}>
              clear
            </button>
          </span>
        )}
      </div>
      {asking && (
        <Confirm
          title={`${asking.command} ${asking.bots.length === 1 ? asking.bots[0] : `${asking.bots.length} bots`}?`}
          confirmLabel={asking.command}
          onCancel={() => setAsking(null)}
          onConfirm={() => {
            send(asking.command, asking.bots);
            setAsking(null);
          }}
        >
          <p>{consequence(asking.command)}</p>
        </Confirm>
      )}
      <ErrorText error={command.error ?? bulk.error} />
      {bulkFailures.length > 0 && (
        <div className="error" role="alert">
          {bulkFailures.length} of the selection refused:
          <ul>
            {bulkFailures.slice(0, 10).map((result) => (
              <li key={result.id}>
                <code>{result.id}</code> {result.error}
              </li>
            ))}
          </ul>
        </div>
      )}
      {shown.length === 0 ? (
        <Empty>{totals.count === 0 ? "No bots yet." : "No bot matches the filters."}</Empty>
      ) : (
        <div className="table" role="table" aria-label="Bots" aria-rowcount={shown.length}>
          <div className="bot-row head" role="row">
            <span role="columnheader" className="col-select">
              <input
                type="checkbox"
                aria-label="select all shown"
                checked={shown.length > 0 && shown.every((b) => selected.has(b.id))}
                onChange={(e) => setSelected(e.target.checked ? new Set(shown.map((b) => b.id)) : new Set())}
              />
            </span>
            <span role="columnheader" className="col-name">Bot</span>
            <span role="columnheader" className="col-state">State</span>
            <span role="columnheader" className="col-strategy">Strategy</span>
            <span role="columnheader" className="col-num">Equity</span>
            <span role="columnheader" className="col-num">PnL</span>
            <span role="columnheader" className="col-spark">Recent</span>
            <span role="columnheader" className="col-num">Position</span>
            <span role="columnheader" className="col-warn">Warnings</span>
            <span role="columnheader" className="col-actions">Commands</span>
          </div>
          <div ref={scroller} className="rows">
            <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
              {virtualizer.getVirtualItems().map((item) => {
                const bot = shown[item.index];
                return (
                  <div
                    key={bot.id}
                    style={{ position: "absolute", top: 0, left: 0, right: 0, height: ROW_HEIGHT, transform: `translateY(${item.start}px)` }}
                  >
                    <BotRow
                      bot={bot}
                      selected={selected.has(bot.id)}
                      onSelect={onSelect}
                      permitted={permitted}
                      onCommand={onCommand}
                    />
                  </div>
                );
              })}
            </div>
          </div>
        </div>
      )}
    </section>
  );
}
