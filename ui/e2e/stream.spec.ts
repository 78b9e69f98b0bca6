// The live stream survives the server going away: the dashboard shows it
// is reconnecting, resumes when the server is back, and shows what changed
// meanwhile without a reload.
import { expect, test } from "@playwright/test";
import { Host, signedIn } from "./host";

let host: Host;
test.beforeAll(async () => {
  host = await Host.start();
});
test.afterAll(async () => {
  await host.stop();
});

test("stop and restart the server: the stream resumes without a gap", async ({ page }) => {
  await signedIn(page, host);
  const dot = page.locator(".stream-dot");
  await expect(dot).toHaveAttribute("aria-label", "live");
  const row = page.getByRole("row", { name: "bot rsi-reversion-eth" });
  await expect(row.locator(".badge")).toHaveText("running");
  // A mark on this page load: a reload would lose it.
  await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));

  await host.kill();
  await expect(dot).toHaveAttribute("aria-label", "reconnecting");
  await host.restart();
  // Changed as soon as the server is back, before the page has reconnected.
  await host.api("POST", "/bots/rsi-reversion-eth/stop");
  await expect(dot).toHaveAttribute("aria-label", "live", { timeout: 20_000 });
  await expect(row.locator(".badge")).toHaveText("stopped");

  // And events keep coming after the reconnect.
  await host.api("POST", "/bots/rsi-reversion-eth/start");
  await expect(row.locator(".badge")).toHaveText("running");
  expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);

  // The admin page counts the reconnect.
  await page.getByRole("link", { name: "Admin" }).click();
  const health = page.getByLabel("Stream health");
  await expect(health).toContainText("connected");
  await expect(health.locator("dd").nth(1)).not.toHaveText("0");
});
