import { describe, expect, it } from "vitest";
import { applyMergePatch, fromYaml, mergePatch, overridePointerInDraft, toYaml } from "./document";

describe("overridePointerInDraft", () => {
  it("moves a body's override pointers onto the draft and leaves the others", () => {
    expect(overridePointerInDraft("/overrides/strategy/params/fast")).toBe("/strategy/params/fast");
    expect(overridePointerInDraft("/preset")).toBe("/preset");
    expect(overridePointerInDraft("/overridesx/a")).toBe("/overridesx/a");
  });
});

describe("mergePatch", () => {
  const preset = {
    id: "preset",
    capital: { initial: "10000", quote: "USDT" },
    strategy: { plugin: "ema-cross", params: { fast: 12, slow: 26 } },
    risk: { rules: [{ kind: "max_drawdown", limit: "10" }] },
  };

  it("holds only what changed, nested", () => {
    const edited = {
      ...preset,
      id: "mine",
      strategy: { plugin: "ema-cross", params: { fast: 10, slow: 26 } },
    };
    expect(mergePatch(preset, edited)).toEqual({ id: "mine", strategy: { params: { fast: 10 } } });
  });

  it("removes keys with null and replaces arrays whole", () => {
    const edited: Record<string, unknown> = { ...preset, risk: { rules: [] } };
    delete edited.capital;
    const patch = mergePatch(preset, edited);
    expect(patch).toEqual({ capital: null, risk: { rules: [] } });
    expect(applyMergePatch(preset, patch)).toEqual(edited);
  });

  it("is empty for the same document", () => {
    expect(mergePatch(preset, structuredClone(preset))).toEqual({});
  });
});

describe("yaml", () => {
  it("round-trips decimals as strings", () => {
    const doc = { capital: { initial: "10000.50" }, n: 3 };
    const back = fromYaml(toYaml(doc));
    expect(back).toEqual({ doc });
  });

  it("reports a parse error instead of throwing", () => {
    const result = fromYaml("a: [1, 2");
    expect("error" in result && result.error.length > 0).toBe(true);
  });

  it("refuses a document that is not a mapping", () => {
    expect(fromYaml("- 1\n- 2")).toEqual({ error: "the document must be a mapping" });
  });
});
