import { describe, expect, it, vi } from "vitest";
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import type { BotSummary, Command } from "../api/hooks";
import { BotRow } from "./BotRow";

const bot = {
  id: "ema-btc",
  name: "EMA BTC",
  state: "running",
  trading_state: "ACTIVE",
  mode: "paper",
  symbol: "BTCUSDT",
  timeframe: "1m",
  strategy: "ema-cross 1.0.0",
  equity: "10234.5678",
  pnl: "-12.3456",
  position: "0.5",
  equity_trail: ["10000", "10100", "10234.5678"],
  allowed_commands: ["stop", "pause", "kill"],
  error: null,
  kill_switch: null,
} as unknown as BotSummary;

function row(permitted: Command[], onCommand = vi.fn(), overrides: Partial<BotSummary> = {}) {
  render(
    <MemoryRouter>
      <BotRow
        bot={{ ...bot, ...overrides }}
        selected={false}
        onSelect={vi.fn()}
        permitted={new Set(permitted)}
        onCommand={onCommand}
      />
    </MemoryRouter>,
  );
  return onCommand;
}

describe("BotRow", () => {
  it("shows the money from the API's decimal strings, grouped and rounded without floats", () => {
    row([]);
    expect(screen.getByText("10,234.57")).toBeTruthy();
    expect(screen.getByText("-12.35")).toBeTruthy();
    expect(screen.getByLabelText("recent equity")).toBeTruthy();
  });

  it("offers a viewer no command at all", () => {
    row([]);
    expect(screen.queryAllByRole("button")).toHaveLength(0);
  });

  it("offers only what both the role and the bot's state allow", async () => {
    const onCommand = row(["start", "stop", "kill"]);
    const names = screen.getAllByRole("button").map((b) => b.textContent);
    expect(names).toEqual(["stop", "kill"]); // pause: not this role's; start: not this state's
    await userEvent.click(screen.getByRole("button", { name: "stop" }));
    expect(onCommand).toHaveBeenCalledWith("ema-btc", "stop");
  });

  it("warns of a kill-switch", () => {
    row([], vi.fn(), { kill_switch: "max drawdown", trading_state: "HALTED" } as Partial<BotSummary>);
    expect(screen.getByText(/kill-switch: max drawdown/)).toBeTruthy();
  });
});
