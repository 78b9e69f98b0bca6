// What the command buttons of the fleet, a bot's page and the palette
// share: which commands ask first, what the question says, and which the
// emergency stop holds back.

import type { Command } from "../api/hooks";

/** What a bot's command button does: a command, or a stop that also closes
 * the position (`POST /stop` with `flatten`). */
export type Action = Command | "stop-flatten";

/** Actions that cannot be taken back: they ask for a confirmation. */
export const DANGEROUS = new Set<Action>(["kill", "close-all", "stop-flatten"]);

/** The button's words. */
export function actionLabel(action: Action): string {
  return action === "stop-flatten" ? "stop & flatten" : action;
}

/** What a dangerous action does, for its confirmation. */
export function consequence(action: Action): string {
  switch (action) {
    case "kill":
      return "The kill-switch cancels every order, sells the position and halts the bot until it is reset.";
    case "stop-flatten":
      return "The bot stops: its pending orders are cancelled and its position is closed at once at the last price.";
    default:
      return "The whole position is sold at once at the last price.";
  }
}

/** The actions a bot page offers: its commands, and stop & flatten next to
 * stop while the bot holds a position. */
export function actionsOf(commands: Command[], holdsPosition: boolean): Action[] {
  return commands.flatMap((command): Action[] =>
    command === "stop" && holdsPosition ? ["stop", "stop-flatten"] : [command],
  );
}

/** Whether the emergency stop holds `command` back while it is engaged (the
 * server refuses it: no bot starts until an admin releases the stop). */
export function heldByEmergency(command: Command, engaged: boolean | undefined): boolean {
  return Boolean(engaged) && command === "start";
}
