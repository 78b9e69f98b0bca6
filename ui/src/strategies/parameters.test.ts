import { describe, expect, it } from "vitest";
import { parameterRows } from "./parameters";

describe("parameterRows", () => {
  it("says what each parameter takes, with its default", () => {
    const schema = {
      $defs: {
        Seed: { enum: ["first_value", "sma"], type: "string" },
        Size: {
          oneOf: [
            { type: "object", required: ["percent_of_equity"], properties: { percent_of_equity: { type: "number" } } },
            { type: "object", required: ["quantity"], properties: { quantity: { type: "number" } } },
          ],
        },
      },
      properties: {
        fast: { type: "integer", minimum: 1, maximum: 10000, default: 12, description: "Fast period." },
        ema_seed: { $ref: "#/$defs/Seed", default: "first_value" },
        size: { $ref: "#/$defs/Size", default: { percent_of_equity: 25 } },
        note: { type: "string" },
        exit: { anyOf: [{ $ref: "#/$defs/Size" }, { type: "null" }] },
        stop_pct: { type: ["number", "null"], minimum: 0.01, maximum: 99 },
      },
    };
    expect(parameterRows(schema).map((row) => [row.label, row.takes, row.default, row.description])).toEqual([
      ["Fast", "integer, 1 to 10000", "12", "Fast period."],
      ["EMA seed", "one of first_value, sma", '"first_value"', ""],
      ["Size", "one of percent_of_equity, quantity", '{"percent_of_equity":25}', ""],
      ["Note", "string", "", ""],
      ["Exit", "one of percent_of_equity, quantity, null", "", ""],
      ["Stop pct", "number or null, 0.01 to 99", "", ""],
    ]);
  });
});
