import { describe, expect, it } from "vitest";
import { compareDecimal, formatDecimal, formatSigned, roundDecimal, sign, sumDecimals } from "./decimal";

describe("decimal strings", () => {
  it("round on their digits, half up, without float error", () => {
    expect(roundDecimal("0.30000000000000004", 2)).toBe("0.30");
    expect(roundDecimal("1.005", 2)).toBe("1.01"); // a float would say 1.00
    expect(roundDecimal("9.995", 2)).toBe("10.00");
    expect(roundDecimal("-0.004", 2)).toBe("0.00");
    expect(roundDecimal("123456789012345678.125", 2)).toBe("123456789012345678.13");
    expect(roundDecimal("7", 3)).toBe("7.000");
    expect(roundDecimal("2.5", 0)).toBe("3");
  });

  it("format with grouping and signs", () => {
    expect(formatDecimal("12345678.9")).toBe("12,345,678.90");
    expect(formatDecimal("-1234.5", 1)).toBe("-1,234.5");
    expect(formatDecimal(null)).toBe("–");
    expect(formatSigned("12.5")).toBe("+12.50");
    expect(formatSigned("-0.001")).toBe("0.00");
    expect(sign("0.000")).toBe(0);
    expect(sign("-3")).toBe(-1);
  });

  it("compare exactly", () => {
    expect(compareDecimal("10000.0000000000000001", "10000")).toBe(1);
    expect(compareDecimal("-2", "-10")).toBe(1);
    expect(compareDecimal("0.1", "0.10")).toBe(0);
  });
});

describe("sums", () => {
  it("are exact", () => {
    expect(sumDecimals(["0.1", "0.2"])).toBe("0.3");
    expect(sumDecimals(["10000.25", "-20000.5", "3"])).toBe("-9997.25");
    expect(sumDecimals([])).toBe("0");
  });
});
