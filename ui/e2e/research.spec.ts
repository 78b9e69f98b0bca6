// The research pages as a person uses them: data sets (a bad file refused
// with its line, upload, download, delete), backtests run from the form
// with their progress, reports and a side-by-side comparison, and an
// optimisation whose best run becomes a bot.
import { readFileSync, writeFileSync } from "node:fs";
import { expect, test, type Page } from "@playwright/test";
import { Host, signedIn, synthesizeCsv, syntheticDataSet } from "./host";

let host: Host;
test.beforeAll(async () => {
  host = await Host.start();
});
test.afterAll(async () => {
  await host.stop();
});

async function runBacktest(page: Page, bot: string): Promise<string> {
  await page.getByLabel("Data set").selectOption("ETHUSDT/1m");
  await page.getByLabel("Strategy from").selectOption(`bot:${bot}`);
  const started = page.waitForResponse((r) => r.url().endsWith("/api/v1/backtests") && r.request().method() === "POST");
  await page.getByRole("button", { name: "Run backtest" }).click();
  const job = (await (await started).json()) as { id: string };
  return job.id;
}

test("data sets: a bad file is refused with its line, a good one listed, downloaded, deleted", async ({ page }, testInfo) => {
  await signedIn(page, host, "/data");
  const bad = testInfo.outputPath("bad.csv");
  writeFileSync(bad, "ts,open,high,low,close,volume\n0,1,2,0.5,1.5,10\n60000,1,0.5,2,1.5,10\n");
  await page.getByLabel("File").setInputFiles(bad);
  await page.getByLabel("Symbol").fill("SOLUSDT");
  await page.getByRole("button", { name: "Upload" }).click();
  await expect(page.getByRole("alert")).toContainText("line 3");
  await expect(page.getByRole("row", { name: /SOLUSDT/ })).toHaveCount(0);

  const good = testInfo.outputPath("good.csv");
  synthesizeCsv(good, 5_000, 11);
  await page.getByLabel("File").setInputFiles(good);
  await page.getByRole("button", { name: "Upload" }).click();
  const row = page.getByRole("row", { name: /SOLUSDT\/1m/ });
  await expect(row).toContainText("5,000");

  const download = page.waitForEvent("download");
  await row.getByRole("button", { name: "download CSV" }).click();
  const saved = await (await download).path();
  const lines = readFileSync(saved, "utf8").trim().split("\n");
  expect(lines[0]).toBe("ts,open,high,low,close,volume");
  expect(lines).toHaveLength(5_001);

  await row.getByRole("button", { name: "delete" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
  await expect(page.getByRole("row", { name: /SOLUSDT/ })).toHaveCount(0);
});

test("backtests run from the form, show progress and reports, and compare side by side", async ({ page }, testInfo) => {
  await syntheticDataSet(host, "ETHUSDT", 100_000, 11, testInfo.outputPath("eth.csv"));
  await signedIn(page, host, "/backtests");
  const first = await runBacktest(page, "ema-cross-btc");
  const second = await runBacktest(page, "rules-btc");
  for (const id of [first, second]) {
    await expect(page.getByRole("row", { name: new RegExp(id) })).toContainText("done", { timeout: 60_000 });
  }
  await page.screenshot({ path: testInfo.outputPath("backtests.png"), fullPage: true });

  // A config written here: the plugin's parameters are a form of their own.
  await page.getByLabel("Strategy from").selectOption("config");
  await expect(page.getByText("strategy", { exact: false }).first()).toBeVisible();
  // YAML that does not read is never sent (the last document that did read is not either).
  const run = page.getByRole("button", { name: "Run backtest" });
  await page.getByRole("tab", { name: "YAML" }).click();
  await page.getByLabel("Config as YAML").fill("strategy: [unclosed");
  await expect(run).toBeDisabled();
  // Back to the form only once the unreadable edits are given up.
  await page.getByRole("tab", { name: "Form" }).click();
  await expect(run).toBeDisabled();
  await page.getByRole("button", { name: "Discard them and show the form" }).click();
  await expect(run).toBeEnabled();

  await page.getByRole("link", { name: first }).click();
  const report = page.frameLocator(`iframe[title="Report of ${first}"]`);
  await expect(report.getByRole("heading", { name: /^Equity/ })).toBeVisible();
  await expect(page.getByText("ema-cross")).toBeVisible();
  // The report wears the UI's theme, and changes with it.
  const colourOf = { light: "rgb(255, 255, 255)", dark: "rgb(13, 17, 23)" };
  const uiTheme = () => page.evaluate(() => document.documentElement.dataset.theme as "light" | "dark");
  const reportColour = () => report.locator("body").evaluate((body) => getComputedStyle(body).backgroundColor);
  const before = await uiTheme();
  await expect.poll(reportColour).toBe(colourOf[before]);
  await page.getByRole("button", { name: "Settings" }).click();
  await page.getByRole("button", { name: /^(Light|Dark) theme$/ }).click();
  await page.getByRole("button", { name: "Settings" }).click();
  const after = await uiTheme();
  expect(after).not.toBe(before);
  await expect.poll(reportColour).toBe(colourOf[after]);
  await page.goBack();

  await page.getByLabel(`compare ${first}`).check();
  await page.getByLabel(`compare ${second}`).check();
  await page.getByRole("button", { name: "Compare the two ticked" }).click();
  await expect(page.getByRole("heading", { name: "Compare" })).toBeVisible();
  await expect(page.getByRole("row", { name: /Sharpe/ }).first()).toBeVisible();
  // Which candles each ran on, so two periods are never taken for one.
  await expect(page.getByRole("row", { name: /^Candles/ })).toContainText(/\d{4}-\d{2}-\d{2} to \d{4}-\d{2}-\d{2}, \d+ candles/);
  for (const id of [first, second]) {
    await expect(page.frameLocator(`iframe[title="Report of ${id}"]`).getByRole("heading", { name: /^Equity/ })).toBeVisible();
  }
  await page.screenshot({ path: testInfo.outputPath("compare.png"), fullPage: true });
});

test("an optimisation ranks its runs and its best one becomes a bot", async ({ page }, testInfo) => {
  await syntheticDataSet(host, "ETHUSDT", 50_000, 11, testInfo.outputPath("eth-opt.csv"));
  await signedIn(page, host, "/optimizations");
  await page.getByLabel("Data set").selectOption("ETHUSDT/1m");
  // The range's pickers offer only the days the data set covers.
  const sets = await host.api<{ items: { symbol: string; first: string; last: string }[] }>("GET", "/data");
  const eth = sets.items.find((set) => set.symbol === "ETHUSDT");
  await expect(page.getByLabel("From", { exact: true })).toHaveAttribute("min", eth!.first.slice(0, 10));
  await expect(page.getByLabel("To", { exact: true })).toHaveAttribute("max", eth!.last.slice(0, 10));
  await page.getByLabel("Strategy from").selectOption("bot:ema-cross-btc");
  // Left empty, the field searches the strategy's default ranges: shown.
  await expect(page.getByLabel("Ranges")).toHaveAttribute("placeholder", "fast=3..21:2\nslow=25..205:20");
  // fast=40, slow=30 is a set the strategy refuses (slow must exceed fast).
  await page.getByLabel("Ranges").fill("fast=5,40\nslow=30,60");
  await page.getByLabel("Minimum trades").fill("0");
  const started = page.waitForResponse((r) => r.url().endsWith("/api/v1/optimizations") && r.request().method() === "POST");
  await page.getByRole("button", { name: "Run optimisation" }).click();
  const job = (await (await started).json()) as { id: string };
  const row = page.getByRole("row", { name: new RegExp(job.id) });
  await expect(row).toContainText("done", { timeout: 60_000 });
  await expect(row).toContainText("every combination");

  await page.getByRole("link", { name: job.id }).click();
  // The job says what it searched.
  await expect(page.getByText("fast=5,40; slow=30,60", { exact: true })).toBeVisible();
  const ranked = page.getByRole("table", { name: "Ranked runs" });
  await expect(ranked.getByRole("row")).toHaveCount(5); // a header and four sets
  // What the search held is said once, not on every row.
  await expect(ranked.locator("caption")).toHaveText('Every run: size={"percent_of_equity":50}.');
  await expect(ranked.getByRole("row").nth(1)).toContainText("fast=");
  await expect(ranked.getByRole("row").nth(1)).not.toContainText("size=");
  // The refused set says why, where its figures would be.
  await expect(ranked.getByRole("row").filter({ hasText: "must be greater than fast (40), got 30" })).toHaveCount(1);
  await expect(page.frameLocator(`iframe[title="Report of ${job.id}"]`).getByRole("heading").first()).toBeVisible();
  // The frame is as tall as its report: no scroll bar, no empty space.
  const frame = page.locator(`iframe[title="Report of ${job.id}"]`);
  const reportHeight = () =>
    frame.evaluate((element: HTMLIFrameElement) => {
      const body = element.contentDocument!.body;
      const margins = parseFloat(getComputedStyle(body).marginTop) + parseFloat(getComputedStyle(body).marginBottom);
      return Math.abs(element.clientHeight - (body.getBoundingClientRect().height + margins));
    });
  await expect.poll(reportHeight).toBeLessThan(8);
  await page.screenshot({ path: testInfo.outputPath("optimization.png"), fullPage: true });

  const best = ranked.getByRole("row").nth(1);
  await best.getByRole("button", { name: "make a bot" }).click();
  // The server's id for it: the job's and the rank's, so each makes its own.
  await expect(best.getByLabel("New bot id")).toHaveValue(`ema-cross-${job.id.replace(/^opt-/, "")}-1`);
  await best.getByLabel("New bot id").fill("ema-optimised");
  await best.getByRole("button", { name: "create" }).click();
  await expect(page).toHaveURL(/\/bots\/ema-optimised$/);
  const config = await host.api<{ strategy: { params: Record<string, unknown> } }>("GET", "/bots/ema-optimised/config");
  const chosen = await host.api<{ best_params: Record<string, unknown> }>("GET", `/optimizations/${job.id}`);
  expect(config.strategy.params).toEqual(chosen.best_params);
});

test("a walk-forward's last window's choice becomes a bot", async ({ page }, testInfo) => {
  await syntheticDataSet(host, "XRPUSDT", 30_000, 5, testInfo.outputPath("xrp-wf.csv"));
  const queued = await host.api<{ id: string }>("POST", "/optimizations", {
    bot_id: "ema-cross-btc",
    data: "XRPUSDT/1m",
    params: { fast: "5,10", slow: "30,60" },
    min_trades: 0,
    walk_forward: { scheme: "rolling", train: "8d", test: "4d" },
  });
  await signedIn(page, host, `/optimizations/${queued.id}`);
  await expect(page.getByRole("table", { name: "Walk-forward windows" })).toBeVisible({ timeout: 60_000 });
  const headline = page.locator(".headline");
  await expect(headline).toContainText("the last window chose");
  await page.screenshot({ path: testInfo.outputPath("walk-forward.png"), fullPage: true });
  await headline.getByRole("button", { name: "make a bot" }).click();
  await headline.getByLabel("New bot id").fill("ema-walked");
  await headline.getByRole("button", { name: "create" }).click();
  await expect(page).toHaveURL(/\/bots\/ema-walked$/);
  const bot = await host.api<{ name: string; config: { strategy: { params: Record<string, unknown> } } }>("GET", "/bots/ema-walked");
  const job = await host.api<{ best_params: Record<string, unknown> }>("GET", `/optimizations/${queued.id}`);
  expect(bot.config.strategy.params).toEqual(job.best_params);
  expect(bot.name).toContain("the last window's choice");
});
