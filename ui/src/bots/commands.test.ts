import { describe, expect, it } from "vitest";
import { actionsOf, DANGEROUS } from "./commands";

describe("a bot page's actions", () => {
  it("offer stop & flatten next to stop while a position is held, and ask first", () => {
    expect(actionsOf(["stop", "pause", "kill"], true)).toEqual(["stop", "stop-flatten", "pause", "kill"]);
    expect(actionsOf(["stop", "pause", "kill"], false)).toEqual(["stop", "pause", "kill"]);
    expect(actionsOf(["start"], true)).toEqual(["start"]);
    expect(DANGEROUS.has("stop-flatten")).toBe(true);
  });
});
