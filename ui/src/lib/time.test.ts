import { describe, expect, it } from "vitest";
import { formatTime } from "./time";

describe("formatTime", () => {
  it("reads every RFC 3339 time in UTC, to the second", () => {
    expect(formatTime("2024-01-01T09:30:00.000Z")).toBe("2024-01-01 09:30:00");
    expect(formatTime("2024-01-01T10:30:00+01:00")).toBe("2024-01-01 09:30:00");
    expect(formatTime(null)).toBe("–");
    expect(formatTime("soon")).toBe("soon");
  });
});
