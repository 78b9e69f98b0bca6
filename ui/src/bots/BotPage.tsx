// One bot: its state and commands, chart, equity, position and orders,
// fills and trades, risk, logs, timeline and the manual order form. Live
// over the stream; the lists are paged from the API.

import { useEffect, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useQueryClient } from "@tanstack/react-query";
import {
  allowed,
  appendNewEquity,
  useBotStatus,
  useCandles,
  useCommand,
  useDeleteBot,
  useEmergency,
  useEquity,
  useFills,
  useMe,
  type Command,
} from "../api/hooks";
import { keys } from "../api/keys";
import { useFollow } from "../api/streamContext";
import { Confirm } from "../components/Confirm";
import { notify } from "../components/Toasts";
import { ErrorText, Loading } from "../components/States";
import { formatDecimal, formatSigned, sign } from "../lib/decimal";
import { CandleChart, EquityChart } from "./charts";
import { type Action, actionLabel, actionsOf, consequence, DANGEROUS, heldByEmergency } from "./commands";
import { FillsTable, LogTail, ManualOrderForm, PositionPanel, RiskPanel, Timeline, TradesTable } from "./panels";

const COMMANDS: Command[] = ["start", "stop", "pause", "resume", "kill", "reset", "close-all", "cancel-pending"];
/** Shortest time between two catch-ups of what a new candle changes. */
const CATCH_UP_MS = 2_000;

export function BotPage() {
  const { id = "" } = useParams();
  useFollow(`bot:${id}`, { channels: ["orders", "positions", "trades", "risk", "logs", "signals"], bots: [id] });
  const status = useBotStatus(id);
  const me = useMe();
  const emergency = useEmergency();
  const command = useCommand();
  const client = useQueryClient();
  const [confirming, setConfirming] = useState<Action | null>(null);
  const remove = useDeleteBot();
  const navigate = useNavigate();
  const [confirmingDelete, setConfirmingDelete] = useState(false);
  const candles = useCandles(status.data?.symbol, status.data?.timeframe);
  const fills = useFills(id);
  const equity = useEquity(id);

  // A new candle closed: the chart, the equity, the risk readings and what
  // only the status holds (position, cash, fees, candle count; bot.updated
  // carries the summary) catch up, driven by the stream's bot.updated, never
  // by a timer; at most once per CATCH_UP_MS however fast candles close (a
  // replay feed closes ten a second), so a page never eats its caller's
  // rate limit.
  const lastCandle = status.data?.last_candle_at;
  const market = status.data && keys.candles(status.data.symbol, status.data.timeframe);
  const catchUp = useRef<{ at: number; timer?: number }>({ at: 0 });
  useEffect(() => {
    if (!lastCandle || !market) return;
    const run = () => {
      catchUp.current = { at: Date.now() };
      void client.invalidateQueries({ queryKey: market });
      void client.invalidateQueries({ queryKey: keys.status(id) });
      void client.invalidateQueries({ queryKey: keys.risk(id) });
      appendNewEquity(client, id).catch(() => undefined);
    };
    const wait = catchUp.current.at + CATCH_UP_MS - Date.now();
    if (wait <= 0) run();
    else catchUp.current.timer ??= window.setTimeout(run, wait);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [lastCandle]);
  useEffect(() => () => window.clearTimeout(catchUp.current.timer), []);

  if (status.isLoading) return <Loading what={`bot ${id}`} />;
  if (!status.data) return <ErrorText error={status.error} />;
  const bot = status.data;
  const commands = COMMANDS.filter(
    (c) =>
      bot.allowed_commands.includes(c) &&
      allowed(me.data, `POST /api/v1/bots/{id}/${c}`) &&
      !heldByEmergency(c, emergency.data?.engaged),
  );
  const deletable = bot.allowed_commands.includes("delete") && allowed(me.data, "DELETE /api/v1/bots/{id}");
  const actions = actionsOf(commands, bot.positions.length > 0);
  const send = (action: Action) =>
    command.mutate(action === "stop-flatten" ? { id, command: "stop", flatten: true } : { id, command: action });
  const run = (action: Action) => (DANGEROUS.has(action) ? setConfirming(action) : send(action));
  const allFills = (fills.data?.pages ?? []).flatMap((page) => page.items);

  return (
    <section className="bot-page" aria-label={`Bot ${id}`}>
      <header className="bot-head">
        <div>
          <h1>
            {bot.id} <span className={`badge badge-${bot.state}`}>{bot.state}</span>{" "}
            <span className={`badge badge-${bot.trading_state.toLowerCase()}`}>{bot.trading_state}</span>
          </h1>
          <p className="muted">
            {bot.name} · {bot.strategy} · {bot.symbol} {bot.timeframe} · {bot.mode} · config v{bot.config_version}{" "}
            <Link to={`/bots/${id}/config`}>Config</Link>
          </p>
          {bot.error && <p className="error">{bot.error}</p>}
          {bot.kill_switch && <p className="warn">Kill-switch engaged: {bot.kill_switch}</p>}
        </div>
        <div className="figures">
          <span>
            equity <strong>{formatDecimal(bot.equity)}</strong> {bot.quote}
          </span>
          <span className={`pnl-${sign(bot.pnl)}`}>
            PnL <strong>{formatSigned(bot.pnl)}</strong> {bot.quote}
          </span>
          <span>
            candles <strong>{bot.candles_processed}</strong>
          </span>
        </div>
        <div className="commands" aria-label="Commands">
          {actions.map((action) => (
            <button key={action} className={DANGEROUS.has(action) ? "danger" : ""} onClick={() => run(action)}>
              {actionLabel(action)}
            </button>
          ))}
          {deletable && (
            <button className="danger" onClick={() => setConfirmingDelete(true)}>
              delete
            </button>
          )}
        </div>
      </header>
      <ErrorText error={command.error ?? remove.error} />
      {confirmingDelete && (
        <Confirm
          title={`delete ${id}?`}
          confirmLabel="delete"
          onCancel={() => setConfirmingDelete(false)}
          onConfirm={() => {
            setConfirmingDelete(false);
            remove.mutate(id, {
              onSuccess: () => {
                notify("good", `${id} deleted`);
                navigate("/");
              },
            });
          }}
        >
          <p>The bot, its config history, orders, fills, trades and equity are removed for good. The audit log keeps a trace.</p>
        </Confirm>
      )}
      {confirming && (
        <Confirm
          title={`${actionLabel(confirming)} ${id}?`}
          confirmLabel={actionLabel(confirming)}
          onCancel={() => setConfirming(null)}
          onConfirm={() => {
            send(confirming);
            setConfirming(null);
          }}
        >
          <p>{consequence(confirming)}</p>
        </Confirm>
      )}
      <div className="grid">
        <div className="wide">
          <CandleChart candles={candles.data?.items ?? []} fills={allFills} orders={bot.open_orders} />
          <EquityChart points={equity.data ?? []} since={candles.data?.items[0]?.at} />
        </div>
        <PositionPanel status={bot} />
        <RiskPanel id={id} />
        {allowed(me.data, "POST /api/v1/bots/{id}/orders") && <ManualOrderForm id={id} />}
        <Timeline id={id} />
        <FillsTable id={id} />
        <TradesTable id={id} />
        <LogTail id={id} />
      </div>
    </section>
  );
}
