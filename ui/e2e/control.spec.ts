// Commanding bots and watching them live: start/stop, a trade appearing
// without a reload, the kill-switch, commands on a selection, and the
// emergency stop of everything.
import { expect, test } from "@playwright/test";
import { Host, signedIn } from "./host";

let host: Host;
test.beforeAll(async () => {
  host = await Host.start();
});
test.afterAll(async () => {
  await host.stop();
});

test("stop and start a bot from the fleet", async ({ page }) => {
  await signedIn(page, host);
  const row = page.getByRole("row", { name: "bot breakout-sol" });
  await expect(row.locator(".badge")).toHaveText("running");
  await row.getByRole("button", { name: "stop" }).click();
  await expect(row.locator(".badge")).toHaveText("stopped");
  await expect(row.getByRole("button", { name: "start" })).toBeVisible();
  expect((await host.api<{ state: string }>("GET", "/bots/breakout-sol/status")).state).toBe("stopped");
  await row.getByRole("button", { name: "start" }).click();
  await expect(row.locator(".badge")).toHaveText("running");
  // A kill asks first; cancelled, nothing happens.
  await row.getByRole("button", { name: "kill" }).click();
  const asking = page.getByRole("dialog", { name: "kill breakout-sol?" });
  await expect(asking).toContainText("halts the bot until it is reset");
  await asking.getByRole("button", { name: "Cancel" }).click();
  await expect(asking).toHaveCount(0);
  await expect(row.locator(".badge")).toHaveText("running");
});

test("a trade appears on the bot page without reloading", async ({ page }) => {
  await signedIn(page, host, "/bots/rules-btc");
  const fills = page.getByRole("region", { name: "Fills" });
  const trades = page.getByRole("region", { name: "Trades" });
  await expect(page.getByRole("heading", { name: /rules-btc/ })).toBeVisible();
  await expect(fills).toBeVisible();
  const fillRows = fills.locator("tbody tr");
  const tradeRows = trades.locator("tbody tr");
  const fillsBefore = await fillRows.count();
  const tradesBefore = await tradeRows.count();
  const position = page.getByRole("region", { name: "Position and open orders" });
  const positionBefore = (await position.textContent()) ?? "";
  const candles = page.locator(".figures span", { hasText: "candles" }).locator("strong");
  const candlesBefore = Number(await candles.textContent());

  // Orders placed behind the page's back (another client): only the stream
  // tells it. The strategy trades meanwhile too (its sizes are a share of
  // equity, never exactly 1): the operator's fills are the rows of 1.00000.
  const manual = (side: string) => fillRows.filter({ hasText: side }).filter({ hasText: "1.00000" });
  const [buysBefore, sellsBefore] = [await manual("buy").count(), await manual("sell").count()];
  await host.api("POST", "/bots/rules-btc/orders", { side: "buy", kind: "market", quantity: "1" });
  await expect(manual("buy")).toHaveCount(buysBefore + 1);
  // What only the status holds (position, cash, fees, candle count) follows too.
  await expect(position).not.toHaveText(positionBefore);
  await expect.poll(async () => Number(await candles.textContent())).toBeGreaterThan(candlesBefore);
  await host.api("POST", "/bots/rules-btc/orders", { side: "sell", kind: "market", quantity: "1" });
  await expect(manual("sell")).toHaveCount(sellsBefore + 1);
  await expect.poll(() => fillRows.count()).toBeGreaterThanOrEqual(fillsBefore + 2);
  await expect.poll(() => tradeRows.count()).toBeGreaterThan(tradesBefore);
  await expect(page.getByRole("region", { name: "Timeline" })).toContainText("round trip closed");
});

test("a bot page catches up with ten candles a second in a few small requests", async ({ page }) => {
  await signedIn(page, host, "/bots/rules-btc");
  await expect(page.getByRole("region", { name: "Fills" })).toBeVisible();
  await page.waitForTimeout(1_000);
  const calls: string[] = [];
  page.on("request", (request) => {
    const path = new URL(request.url()).pathname;
    if (path.startsWith("/api/v1/")) calls.push(path);
  });
  const status = () => host.api<{ candles_processed: number }>("GET", "/bots/rules-btc/status");
  const before = (await status()).candles_processed;
  await page.waitForTimeout(6_000);
  expect((await status()).candles_processed - before).toBeGreaterThan(30);
  // At most one catch-up per 2 s: candles, status, risk and the new
  // equity points (one page), never the whole equity history again.
  expect(calls.length, calls.join("\n")).toBeLessThanOrEqual(20);
  expect(calls.filter((path) => path.endsWith("/equity")).length).toBeLessThanOrEqual(5);
});

test("a bot page loads its equity from now backwards, so a long-running bot shows its recent curve", async ({ page }) => {
  const first = page.waitForRequest((request) => new URL(request.url()).pathname.endsWith("/bots/rules-btc/equity"));
  await signedIn(page, host, "/bots/rules-btc");
  const query = new URL((await first).url()).searchParams;
  expect(query.get("order")).toBe("newest");
});

test("a manual order the risk engine refuses shows the check that refused it", async ({ page }) => {
  await signedIn(page, host, "/bots/rules-btc");
  const form = page.getByRole("region", { name: "Manual order" });
  await form.getByLabel("Quantity").fill("0.00001");
  await form.getByRole("button", { name: "Place" }).click();
  await expect(form.getByRole("alert")).toContainText(/notional|minimum|min/i);
});

test("kill a bot and see its kill-switch", async ({ page }) => {
  await signedIn(page, host, "/bots/ema-cross-btc");
  await page.getByLabel("Commands").getByRole("button", { name: "kill" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "kill" }).click();
  await expect(page.getByText(/Kill-switch engaged/)).toBeVisible();
  await expect(page.getByRole("heading", { name: /ema-cross-btc/ }).locator(".badge").first()).toHaveText("killed");
  await expect(page.getByRole("region", { name: "Risk" })).toContainText(/kill/i);
  // Reset puts it back to stopped (allowed commands follow the state).
  await page.getByLabel("Commands").getByRole("button", { name: "reset" }).click();
  await expect(page.getByRole("heading", { name: /ema-cross-btc/ }).locator(".badge").first()).toHaveText("stopped");
});

test("stop & flatten: the bot stops and its position is closed, after a confirmation", async ({ page }) => {
  type Status = { state: string; positions: unknown[] };
  // A bot whose rules never fire: only the operator moves its position.
  const never = { crosses_above: { left: { sma: 5 }, right: { sma: 5 } } };
  await host.api("POST", "/bots", {
    id: "flatten-me",
    name: "flatten me",
    strategy: { plugin: "rules", params: { entry: never, exit: never, size_pct: 25 } },
    market: { symbol: "BTCUSDT", timeframe: "1m", feed: { kind: "synthetic", seed: 7, interval_ms: 100 } },
    capital: { quote: "USDT", initial: "10000" },
    autostart: true,
  });
  // An order needs a price: the first candle closes within 100 ms.
  type Candles = { candles_processed: number };
  await expect.poll(async () => (await host.api<Candles>("GET", "/bots/flatten-me/status")).candles_processed).toBeGreaterThan(0);
  await host.api("POST", "/bots/flatten-me/orders", { side: "buy", kind: "market", quantity: "1" });
  await expect.poll(async () => (await host.api<Status>("GET", "/bots/flatten-me/status")).positions.length).toBe(1);
  await signedIn(page, host, "/bots/flatten-me");
  await page.getByLabel("Commands").getByRole("button", { name: "stop & flatten" }).click();
  const dialog = page.getByRole("dialog");
  await expect(dialog).toContainText("position is closed");
  await dialog.getByRole("button", { name: "stop & flatten" }).click();
  await expect(page.getByRole("heading", { name: /flatten-me/ }).locator(".badge").first()).toHaveText("stopped");
  const status = await host.api<Status>("GET", "/bots/flatten-me/status");
  expect(status.positions).toEqual([]);
  // Flat and stopped: stop & flatten is no longer offered.
  await expect(page.getByLabel("Commands").getByRole("button", { name: "stop & flatten" })).toHaveCount(0);
  await host.api("DELETE", "/bots/flatten-me");
});

test("a command for a selection of bots", async ({ page }) => {
  await signedIn(page, host);
  await page.getByLabel("select rsi-reversion-eth").check();
  await page.getByLabel("select breakout-sol").check();
  const selection = page.getByLabel("Selection");
  await expect(selection).toContainText("2 selected");
  await selection.getByRole("button", { name: "pause" }).click();
  await expect(page.getByRole("row", { name: "bot rsi-reversion-eth" }).locator(".badge")).toHaveText("paused");
  await expect(page.getByRole("row", { name: "bot breakout-sol" }).locator(".badge")).toHaveText("paused");
  await selection.getByRole("button", { name: "resume" }).click();
  await expect(page.getByRole("row", { name: "bot breakout-sol" }).locator(".badge")).toHaveText("running");
});

test("emergency stop: every bot killed, then released by an admin", async ({ page }) => {
  await host.api("POST", "/bots/start-all");
  await signedIn(page, host);
  await page.getByRole("button", { name: "Emergency stop" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Kill every bot" }).click();
  const banner = page.getByRole("region", { name: "Emergency stop" });
  await expect(banner).toContainText("Emergency stop engaged");
  await expect(banner).toContainText("Every bot is stopped.");
  const badges = page.getByRole("table", { name: "Bots" }).locator(".bot-row:not(.head) .badge");
  await expect(badges).toHaveCount(4);
  await expect(badges).toHaveText(["killed", "killed", "killed", "killed"]);
  const bots = await host.api<{ items: { state: string }[] }>("GET", "/bots");
  expect(bots.items.map((b) => b.state)).toEqual(["killed", "killed", "killed", "killed"]);

  // A reset bot is not offered a start the emergency stop would refuse.
  await host.api("POST", "/bots/ema-cross-btc/reset");
  const reset = page.getByRole("row", { name: "bot ema-cross-btc" });
  await expect(reset.locator(".badge")).toHaveText("stopped");
  await expect(reset.getByRole("button", { name: "start" })).toHaveCount(0);

  await banner.getByRole("button", { name: "Release" }).click();
  await expect(banner).toHaveCount(0);
  await expect(reset.getByRole("button", { name: "start" })).toBeVisible();
  expect((await host.api<{ engaged: boolean }>("GET", "/emergency")).engaged).toBe(false);

  // Killed bots are reset from the fleet; a command none of the selection
  // can take says so instead of doing nothing.
  await page.getByLabel("select breakout-sol").check();
  await page.getByLabel("select rsi-reversion-eth").check();
  const selection = page.getByLabel("Selection");
  await selection.getByRole("button", { name: "start" }).click();
  await expect(page.getByText(/None of the selection can start now: breakout-sol \(killed\)/)).toBeVisible();
  await selection.getByRole("button", { name: "reset" }).click();
  await expect(page.getByRole("row", { name: "bot breakout-sol" }).locator(".badge")).toHaveText("stopped");
  await expect(page.getByRole("row", { name: "bot rsi-reversion-eth" }).locator(".badge")).toHaveText("stopped");
});

test("the command palette goes to a bot and commands it from the keyboard", async ({ page }) => {
  await host.api("POST", "/bots/rules-btc/reset"); // killed by the emergency stop above
  await host.api("POST", "/bots/rules-btc/start");
  await signedIn(page, host);
  await expect(page.getByRole("row", { name: "bot rules-btc" })).toBeVisible();
  await page.keyboard.press("Control+k");
  const palette = page.getByRole("dialog", { name: "Command palette" });
  await palette.getByLabel("Command").fill("go to rules");
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/\/bots\/rules-btc$/);
  await page.keyboard.press("Control+k");
  await palette.getByLabel("Command").fill("pause rules-btc");
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { name: /rules-btc/ }).locator(".badge").first()).toHaveText("paused");
});
