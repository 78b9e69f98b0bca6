// One bot in the fleet: state, money, a sparkline, warnings, and the
// commands its state and the caller's role allow.

import { memo } from "react";
import { Link } from "react-router-dom";
import type { BotSummary, Command } from "../api/hooks";
import { Sparkline } from "../components/Sparkline";
import { formatDecimal, formatSigned, sign } from "../lib/decimal";

const COMMANDS: Command[] = ["start", "stop", "pause", "resume", "reset", "kill"];

export interface BotRowProps {
  bot: BotSummary;
  selected: boolean;
  onSelect: (id: string, on: boolean) => void;
  /** Commands the caller's role may use. */
  permitted: Set<Command>;
  onCommand: (id: string, command: Command) => void;
}

function warnings(bot: BotSummary): string[] {
  const found: string[] = [];
  if (bot.error) found.push(bot.error);
  if (bot.kill_switch) found.push(`kill-switch: ${bot.kill_switch}`);
  if (bot.trading_state !== "ACTIVE") found.push(bot.trading_state);
  return found;
}

export const BotRow = memo(function BotRow({ bot, selected, onSelect, permitted, onCommand }: BotRowProps) {
  const notes = warnings(bot);
  const commands = COMMANDS.filter((c) => permitted.has(c) && bot.allowed_commands.includes(c));
  return (
    <div className={`bot-row state-${bot.state}`} role="row" aria-label={`bot ${bot.id}`}>
      <span role="cell" className="col-select">
        <input
          type="checkbox"
          aria-label={`select ${bot.id}`}
          checked={selected}
          onChange={(event) => onSelect(bot.id, event.target.checked)}
        />
      </span>
      <span role="cell" className="col-name">
        <Link to={`/bots/${bot.id}`}>{bot.id}</Link>
        <small>{bot.name}</small>
      </span>
      <span role="cell" className="col-state">
        <span className={`badge badge-${bot.state}`}>{bot.state}</span>
        <small>{bot.mode}</small>
      </span>
      <span role="cell" className="col-strategy">
        {bot.strategy}
        <small>
          {bot.symbol} {bot.timeframe}
        </small>
      </span>
      <span role="cell" className="col-num">
        {formatDecimal(bot.equity)}
      </span>
      <span role="cell" className={`col-num pnl-${sign(bot.pnl)}`}>
        {formatSigned(bot.pnl)}
      </span>
      <span role="cell" className="col-spark">
        <Sparkline values={bot.equity_trail} />
      </span>
      <span role="cell" className="col-num">
        {formatDecimal(bot.position, 5)}
      </span>
      <span role="cell" className="col-warn" title={notes.join("\n")}>
        {notes.length > 0 ? <span className="warn">⚠ {notes[0]}</span> : null}
      </span>
      <span role="cell" className="col-actions">
        {commands.map((command) => (
          <button
            key={command}
            className={command === "kill" ? "small danger" : "small"}
            onClick={() => onCommand(bot.id, command)}
          >
            {command}
          </button>
        ))}
      </span>
    </div>
  );
});
