// What the command buttons of the fleet, a bot's page and the palette
// share: which commands ask first, and what the question says.

import type { Command } from "../api/hooks";

/** Commands that cannot be taken back: they ask for a confirmation. */
export const DANGEROUS = new Set<Command>(["kill", "close-all"]);

/** What a dangerous command does, for its confirmation. */
export function consequence(command: Command): string {
  return command === "kill"
    ? "The kill-switch cancels every order, sells the position and halts the bot until it is reset."
    : "The whole position is sold at once at the last price.";
}
