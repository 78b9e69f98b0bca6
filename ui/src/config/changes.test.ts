import { describe, expect, it } from "vitest";
import { changedCopy, changesFrom } from "./ConfigEditor";
import type { JsonSchema } from "./formSchema";

const schema = {
  type: "object",
  properties: {
    name: { type: "string" },
    fees: { type: "object", properties: { taker_bps: { type: "number", default: 10 } }, default: {} },
  },
} as unknown as JsonSchema;

describe("what a config form sends", () => {
  it("carries what was changed, not the defaults the form filled in", () => {
    const base = { name: "a" };
    const draft = { name: "b", fees: { taker_bps: 10 } };
    expect(changesFrom(schema, base, draft)).toEqual({ name: "b" });
    expect(changedCopy(schema, base, draft)).toEqual({ name: "b" });
  });

  it("keeps a change away from a default", () => {
    const base = { name: "a" };
    const draft = { name: "a", fees: { taker_bps: 7 } };
    expect(changedCopy(schema, base, draft)).toEqual({ name: "a", fees: { taker_bps: 7 } });
  });
});
