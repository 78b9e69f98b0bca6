import { describe, expect, it } from "vitest";
import { ranges } from "./OptimizationsPage";

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
});
