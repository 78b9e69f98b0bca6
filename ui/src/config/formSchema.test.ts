import { describe, expect, it } from "vitest";
import { configFormSchema, errorTree, formSchema, labelOf, paramsSchema, type JsonSchema } from "./formSchema";

describe("form schemas", () => {
  it("point references inside, make decimals text, drop null branches of values and offer off/on for sections", () => {
    const components = {
      Capital: {
        type: "object",
        properties: {
          initial: { anyOf: [{ type: "number" }, { type: "string", pattern: "^-?[0-9]+(\\.[0-9]+)?$" }] },
          quote: { type: "string" },
        },
      },
      BotConfig: {
        type: "object",
        properties: {
          capital: { $ref: "#/components/schemas/Capital" },
          version: { type: ["string", "null"] },
          risk: { anyOf: [{ $ref: "#/components/schemas/Capital" }, { type: "null" }] },
        },
      },
    };
    const schema = formSchema(components, "BotConfig") as {
      properties: Record<string, Record<string, unknown>>;
      definitions: Record<string, { properties: Record<string, Record<string, unknown>> }>;
    };
    expect(schema.properties.capital.$ref).toBe("#/definitions/Capital");
    expect(schema.properties.version.type).toBe("string");
    expect(schema.properties.risk.oneOf).toEqual([
      { title: "off", type: "null" },
      { $ref: "#/definitions/Capital", title: "on" },
    ]);
    expect(schema.definitions.Capital.properties.initial.type).toBe("string");
  });

  it("turns named constants into a select and names variants by kind", () => {
    const components = {
      BotConfig: {
        type: "object",
        properties: {
          mode: { oneOf: [{ const: "paper", type: "string" }, { const: "live", type: "string" }] },
          feed: {
            oneOf: [
              { type: "object", properties: { kind: { const: "synthetic", type: "string" } } },
              { type: "object", properties: { kind: { const: "replay", type: "string" } } },
            ],
          },
        },
      },
    };
    const schema = formSchema(components, "BotConfig") as { properties: Record<string, JsonSchema> };
    expect(schema.properties.mode.type).toBe("string");
    expect((schema.properties.mode.oneOf as JsonSchema[]).map((b) => b.title)).toEqual(["paper", "live"]);
    expect((schema.properties.feed.oneOf as JsonSchema[]).map((b) => b.title)).toEqual(["synthetic", "replay"]);
  });

  it("keeps a plugin's own definitions", () => {
    const schema = paramsSchema({
      $schema: "https://json-schema.org/draft/2020-12/schema",
      properties: { size: { $ref: "#/$defs/Size" } },
      $defs: { Size: { type: "number" } },
    }) as { properties: { size: { $ref: string } }; definitions: object };
    expect(schema.properties.size.$ref).toBe("#/definitions/Size");
    expect(schema.definitions).toEqual({ Size: { type: "number" } });
  });

  it("turns problem pointers into rjsf's error tree", () => {
    const tree = errorTree(
      [
        { pointer: "/strategy/params/slow", message: "must be above fast" },
        { pointer: "/capital/initial", message: "must be > 0" },
      ],
      "/strategy/params",
    );
    expect(tree).toEqual({ slow: { __errors: ["must be above fast"] } });
    expect(errorTree([{ pointer: "/capital/initial", message: "x" }])).toEqual({
      capital: { initial: { __errors: ["x"] } },
    });
  });

  it("puts the plugin's parameters in place of strategy.params, its definitions apart", () => {
    const components = {
      StrategyRef: { type: "object", properties: { plugin: { type: "string" }, params: { default: {} } } },
      BotConfig: { type: "object", properties: { strategy: { $ref: "#/components/schemas/StrategyRef" } } },
    };
    const schema = configFormSchema(
      components,
      { type: "object", properties: { size: { $ref: "#/$defs/Size" } }, $defs: { Size: { type: "number" } } },
      ["ema-cross", "rules"],
    ) as { definitions: Record<string, { properties: Record<string, JsonSchema> }> };
    const strategy = schema.definitions.StrategyRef.properties;
    expect(strategy.plugin.enum).toEqual(["ema-cross", "rules"]);
    expect((strategy.params.properties as Record<string, JsonSchema>).size.$ref).toBe("#/definitions/params-Size");
    expect(schema.definitions["params-Size"]).toEqual({ type: "number" });
  });
});

describe("labelOf", () => {
  it("says a key in words, acronyms in capitals", () => {
    expect(labelOf("max_open_orders")).toBe("Max open orders");
    expect(labelOf("atr_period")).toBe("ATR period");
    expect(labelOf("id")).toBe("ID");
    expect(labelOf("rest_url")).toBe("Rest URL");
  });
});
