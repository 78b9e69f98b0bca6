// What the command buttons of the fleet, a bot's page and the palette
// share: which commands ask first, what the question says, and which the
// emergency stop holds back.

import type { Command } from "../api/hooks";

/** Commands that cannot be taken back: they ask for a confirmation. */
export const DANGEROUS = new Set<Command>(["kill", "close-all"]);

/** What a dangerous command does, for its confirmation. */
export function consequence(command: Command): string {
  return command === "kill"
    ? "The kill-switch cancels every order, sells the position and halts the bot until it is reset."
    : "The whole position is sold at once at the last price.";
}

/** Whether the emergency stop holds `command` back while it is engaged (the
 * server refuses it: no bot starts until an admin releases the stop). */
export function heldByEmergency(command: Command, engaged: boolean | undefined): boolean {
  return Boolean(engaged) && command === "start";
}
