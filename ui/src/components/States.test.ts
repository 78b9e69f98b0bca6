import { describe, expect, it } from "vitest";
import { lead } from "./States";

describe("lead", () => {
  const error = { pointer: "/capital", message: "can only change while the bot is stopped" };
  it("keeps what the errors do not say", () => {
    expect(
      lead({
        type: "https://stratbox.dev/problems/not-hot-swappable",
        title: "Conflict",
        status: 409,
        detail: "not hot-swappable while the bot runs: /capital: can only change while the bot is stopped",
        errors: [error],
      }),
    ).toBe("not hot-swappable while the bot runs");
  });
  it("drops a detail that only joins the errors", () => {
    expect(
      lead({
        type: "https://stratbox.dev/problems/validation",
        title: "Unprocessable Entity",
        status: 422,
        detail: "/capital: can only change while the bot is stopped; /id: x",
        errors: [error, { pointer: "/id", message: "x" }],
      }),
    ).toBe("");
  });
  it("keeps the whole detail when there is no list", () => {
    expect(lead({ type: "https://stratbox.dev/problems/not-found", title: "Not Found", status: 404, detail: "no bot `x`" })).toBe("no bot `x`");
  });
});
