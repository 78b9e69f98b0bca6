import { describe, expect, it } from "vitest";
import { rangeLines, ranges } from "./OptimizationsPage";

describe("optimisation ranges", () => {
  it("reads one NAME=RANGE per line", () => {
    expect(ranges("fast=5..20:5\n slow = 30,50 \n\nnoise")).toEqual({
      params: { fast: "5..20:5", slow: "30,50" },
      twice: [],
    });
  });

  it("names a parameter given twice instead of keeping the last", () => {
    expect(ranges("fast=2..6\nslow=30\nfast=0..3\nfast=1").twice).toEqual(["fast"]);
  });

  it("writes a strategy's default search as the field reads it", () => {
    const lines = rangeLines({ fast: "3..21:2", slow: "25..205:20" });
    expect(lines).toBe("fast=3..21:2\nslow=25..205:20");
    expect(ranges(lines).params).toEqual({ fast: "3..21:2", slow: "25..205:20" });
    expect(rangeLines(undefined)).toBe("");
  });
});
