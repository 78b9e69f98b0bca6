// A backtest report as a person opens it: a job run through the API over
// a synthetic data set, its report loaded in Chromium with no console
// error and nothing fetched from anywhere, every chart drawn, and a
// screenshot to look at.
import { expect, test } from "@playwright/test";
import { ADMIN_TOKEN, Host, syntheticDataSet } from "./host";

let host: Host;
test.beforeAll(async () => {
  host = await Host.start();
});
test.afterAll(async () => {
  await host.stop();
});

test("a backtest report renders whole, self-contained, without errors", async ({ page }, testInfo) => {
  await syntheticDataSet(host, "BTCUSDT", 200_000, 5, testInfo.outputPath("candles.csv"));
  const job = await host.api<{ id: string }>("POST", "/backtests", { bot_id: "ema-cross-btc", data: "BTCUSDT/1m" });
  await expect
    .poll(async () => (await host.api<{ state: string }>("GET", `/backtests/${job.id}`)).state, { timeout: 60_000 })
    .toBe("done");

  const problems: string[] = [];
  const outside: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("request", (request) => {
    if (!request.url().startsWith(`${host.url}/api/v1/backtests/${job.id}/report`)) outside.push(request.url());
  });
  await page.setExtraHTTPHeaders({ Authorization: `Bearer ${ADMIN_TOKEN}` });
  const response = await page.goto(`${host.url}/api/v1/backtests/${job.id}/report`);
  expect(response?.status()).toBe(200);
  expect(response?.headers()["content-type"]).toContain("text/html");

  await expect(page.locator("h1")).toContainText("Backtest: ");
  for (const section of ["Headline", "Equity", "Underwater", "Longest drawdowns", "Monthly returns", "Rolling Sharpe", "Trade PnL distribution", "Price and fills", "Trades"]) {
    await expect(page.getByRole("heading", { name: new RegExp(`^${section}`) })).toBeVisible();
  }
  for (const chart of ["Equity curve", "Drawdown", "Rolling Sharpe", "Trade PnL", "Candles with fills"]) {
    const svg = page.getByRole("img", { name: chart });
    await expect(svg).toBeVisible();
    const box = await svg.boundingBox();
    expect(box!.width).toBeGreaterThan(400);
  }
  // Every fill is counted in a mark (one per bar and side), and the heat
  // map has a row per year.
  const result = await host.api<{ fills: unknown[]; trades: unknown[] }>("GET", `/backtests/${job.id}/result`);
  expect(result.trades.length).toBeGreaterThan(5);
  const marked = await page.locator("polygon title").allTextContents();
  expect(marked.length).toBeGreaterThan(0);
  expect(marked.reduce((sum, title) => sum + Number(title.split(" ")[0]), 0)).toBe(result.fills.length);
  await expect(page.locator("table.heat tr")).not.toHaveCount(0);
  await page.screenshot({ path: testInfo.outputPath("report.png"), fullPage: true });
  // Opened on its own, the page follows the reader's system theme.
  const pageColour = () => page.locator("body").evaluate((body) => getComputedStyle(body).backgroundColor);
  await page.emulateMedia({ colorScheme: "light" });
  expect(await pageColour()).toBe("rgb(255, 255, 255)");
  await page.emulateMedia({ colorScheme: "dark" });
  expect(await pageColour()).toBe("rgb(13, 17, 23)");
  await page.screenshot({ path: testInfo.outputPath("report-dark.png"), fullPage: true });
  expect(problems).toEqual([]);
  expect(outside).toEqual([]);
});
