// The README's screenshots: fleet, bot, config and admin pages in both
// themes (and the fleet on a phone, and an optimisation), taken from a
// live host. Written to
// docs/screenshots with STRATBOX_UPDATE_SCREENSHOTS=1 (`make screenshots`),
// to this run's output folder otherwise.
import { join } from "node:path";
import { expect, test, type Page } from "@playwright/test";
import { Host, ROOT, signedIn, syntheticDataSet } from "./host";

let host: Host;
test.beforeAll(async () => {
  host = await Host.start();
  // Give the demo bots a little history to show (a market order needs a
  // price: a first closed candle).
  await expect
    .poll(async () => (await host.api<{ candles_processed: number }>("GET", "/bots/ema-cross-btc")).candles_processed, { timeout: 30_000 })
    .toBeGreaterThan(0);
  await host.api("POST", "/bots/ema-cross-btc/orders", { side: "buy", kind: "market", quantity: "20" });
  await new Promise((done) => setTimeout(done, 4_000));
  await host.api("POST", "/bots/ema-cross-btc/orders", { side: "sell", kind: "market", quantity: "10" });
});
test.afterAll(async () => {
  await host.stop();
});

function folder(testInfo: { outputPath: (...parts: string[]) => string }): string {
  return process.env.STRATBOX_UPDATE_SCREENSHOTS ? join(ROOT, "docs/screenshots") : testInfo.outputPath();
}

async function withTheme(page: Page, theme: "dark" | "light") {
  await page.addInitScript((value) => localStorage.setItem("stratbox.theme", value), theme);
}

for (const theme of ["dark", "light"] as const) {
  test(`pages in the ${theme} theme`, async ({ page }, testInfo) => {
    const out = folder(testInfo);
    await withTheme(page, theme);
    await signedIn(page, host);
    await expect(page.getByRole("row", { name: "bot ema-cross-btc" })).toBeVisible();
    await expect(page.locator("html")).toHaveAttribute("data-theme", theme);
    await page.screenshot({ path: join(out, `fleet-${theme}.png`) });

    await page.getByRole("link", { name: "ema-cross-btc" }).click();
    await expect(page.getByRole("region", { name: "Fills" }).locator("tbody tr").first()).toBeVisible();
    await page.waitForTimeout(500); // the charts draw on the next frames
    await page.screenshot({ path: join(out, `bot-${theme}.png`), fullPage: true });

    await page.getByRole("link", { name: "Config" }).click();
    await page.locator("#root_strategy_params_fast").fill("0");
    await page.getByRole("button", { name: "Review changes" }).click();
    await expect(page.getByText("less than the minimum of 1").first()).toBeVisible();
    await page.screenshot({ path: join(out, `config-${theme}.png`) });

    await page.getByRole("link", { name: "Admin" }).click();
    await expect(page.getByLabel("Stream health")).toContainText("connected");
    await page.screenshot({ path: join(out, `admin-${theme}.png`) });
  });
}

test("the fleet on a phone", async ({ browser }, testInfo) => {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
  await withTheme(page, "dark");
  await signedIn(page, host);
  await expect(page.getByRole("row", { name: "bot ema-cross-btc" })).toBeVisible();
  // Nothing wider than the screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await page.screenshot({ path: join(folder(testInfo), "fleet-phone.png") });
  await page.close();
});

test("an optimisation", async ({ page }, testInfo) => {
  await syntheticDataSet(host, "BTCUSDT", 60_000, 8, testInfo.outputPath("candles.csv"));
  const job = await host.api<{ id: string }>("POST", "/optimizations", {
    bot_id: "ema-cross-btc",
    data: "BTCUSDT/1m",
    params: { fast: "4..16:4", slow: "30..90:15" },
    objective: "total-return",
    min_trades: 0,
  });
  await expect
    .poll(async () => (await host.api<{ state: string }>("GET", `/optimizations/${job.id}`)).state, { timeout: 60_000 })
    .toBe("done");
  await withTheme(page, "dark");
  await signedIn(page, host, `/optimizations/${job.id}`);
  await expect(page.getByRole("table", { name: "Ranked runs" })).toBeVisible();
  await expect(page.frameLocator(`iframe[title="Report of ${job.id}"]`).getByRole("heading").first()).toBeVisible();
  await page.screenshot({ path: join(folder(testInfo), "optimization-dark.png"), fullPage: true });
});
