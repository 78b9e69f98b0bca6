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
  it("says an order refusal once, with or without a pointer", () => {
    const refusal = (detail: string, pointer: string, message: string) =>
      lead({ type: "https://stratbox.dev/problems/order-refused", title: "Unprocessable Entity", status: 422, detail, errors: [{ pointer, message }] });
    expect(refusal("the order was refused: free_cash: 5 is free", "", "free_cash: 5 is free")).toBe("the order was refused");
    expect(refusal("the order was refused: /price: stop price: at once", "/price", "stop price: at once")).toBe("the order was refused");
  });
  it("keeps the whole detail when there is no list", () => {
    expect(lead({ type: "https://stratbox.dev/problems/not-found", title: "Not Found", status: 404, detail: "no bot `x`" })).toBe("no bot `x`");
  });
});
