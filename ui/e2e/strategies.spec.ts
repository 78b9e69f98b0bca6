// Strategies: upload a .wasm (and see the API's error for a bad one),
// read its parameter schema, delete it.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "@playwright/test";
import { FIXTURES, Host, signedIn } from "./host";

let host: Host;
test.beforeAll(async () => {
  host = await Host.start();
});
test.afterAll(async () => {
  await host.stop();
});

test("upload a strategy, see its schema, delete it", async ({ page }) => {
  await signedIn(page, host, "/strategies");
  await expect(page.getByRole("row", { name: /ema-cross/ }).first()).toBeVisible();
  await expect(page.getByRole("row", { name: /looper/ })).toHaveCount(0);

  await page.getByLabel("Strategy file").setInputFiles(join(FIXTURES, "looper.wasm"));
  const row = page.getByRole("row", { name: /looper/ });
  await expect(row).toBeVisible({ timeout: 30_000 });
  await row.getByRole("button", { name: "Parameters" }).click();
  await expect(page.getByRole("table", { name: "Parameters of looper" })).toBeVisible();
  await page.getByText("JSON Schema").click();
  await expect(page.getByLabel("Parameter schema of looper")).toBeVisible();
  // A parameter reads in words: what it takes, its default.
  await page.getByRole("row", { name: /ema-cross/ }).first().getByRole("button", { name: "Parameters" }).click();
  const ema = page.getByRole("table", { name: "Parameters of ema-cross" });
  await expect(ema.getByRole("row", { name: /EMA seed/ })).toContainText("one of first_value, sma");
  const listed = await host.api<{ items: { name: string }[] }>("GET", "/strategies");
  expect(listed.items.map((s) => s.name)).toContain("looper");

  await row.getByRole("button", { name: "Delete" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
  await expect(page.getByRole("row", { name: /looper/ })).toHaveCount(0);
});

test("a file that is not a plugin gets the API's error", async ({ page }, testInfo) => {
  const junk = join(testInfo.outputPath(), "junk.wasm");
  writeFileSync(junk, Buffer.from("definitely not WebAssembly"));
  await signedIn(page, host, "/strategies");
  await page.getByLabel("Strategy file").setInputFiles(junk);
  await expect(page.getByRole("alert")).toBeVisible({ timeout: 30_000 });
  await expect(page.getByRole("alert")).toContainText(/wasm|WebAssembly|component|magic/i);
});

test("a strategy bots use cannot be deleted, and says why", async ({ page }) => {
  await signedIn(page, host, "/strategies");
  const row = page.getByRole("row", { name: /^ema-cross/ }).first();
  await row.getByRole("button", { name: "Delete" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
  await expect(page.getByRole("alert")).toContainText(/ema-cross-btc|in use|used/);
  await expect(row).toBeVisible();
});
