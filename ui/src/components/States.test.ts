import { describe, expect, it } from "vitest";
import { heading, lead } from "./States";

describe("lead", () => {
  const error = { pointer: "/capital", message: "can only change while the bot is stopped" };
  it("keeps what the errors do not say", () => {
    expect(
      lead({
        type: "https://stratbox.dev/problems/not-hot-swappable",
        title: "Only while stopped",
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
        title: "Not accepted",
        status: 422,
        detail: "/capital: can only change while the bot is stopped; /id: x",
        errors: [error, { pointer: "/id", message: "x" }],
      }),
    ).toBe("");
  });
  it("says an order refusal once, with or without a pointer", () => {
    const refusal = (detail: string, pointer: string, message: string) =>
      lead({ type: "https://stratbox.dev/problems/order-refused", title: "Order refused", status: 422, detail, errors: [{ pointer, message }] });
    expect(refusal("the order was refused: free_cash: 5 is free", "", "free_cash: 5 is free")).toBe("the order was refused");
    expect(refusal("the order was refused: /price: stop price: at once", "/price", "stop price: at once")).toBe("the order was refused");
  });
  it("keeps the whole detail when there is no list", () => {
    expect(lead({ type: "https://stratbox.dev/problems/not-found", title: "Not found", status: 404, detail: "no bot `x`" })).toBe("no bot `x`");
  });
});

describe("heading", () => {
  it("is the detail's lead when it has one, else the kind's title", () => {
    const error = { pointer: "/id", message: "x" };
    expect(
      heading({ type: "https://stratbox.dev/problems/order-refused", title: "Order refused", status: 422, detail: "the order was refused: /id: x", errors: [error] }),
    ).toBe("The order was refused");
    expect(heading({ type: "https://stratbox.dev/problems/validation", title: "Not accepted", status: 422, detail: "/id: x", errors: [error] })).toBe(
      "Not accepted",
    );
  });
});
