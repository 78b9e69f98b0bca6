import { describe, expect, it } from "vitest";
import { formatBytes } from "./bytes";

describe("formatBytes", () => {
  it("uses the largest unit the count reaches", () => {
    expect(formatBytes(812)).toBe("812 B");
    expect(formatBytes(12_595)).toBe("12.3 KiB");
    expect(formatBytes(4.5 * 1024 * 1024)).toBe("4.5 MiB");
    expect(formatBytes(undefined)).toBe("—");
  });
});
