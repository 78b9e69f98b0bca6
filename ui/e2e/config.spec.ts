// Config: server errors at their field, apply with a diff and a new
// version, rollback, YAML view; a new bot from a preset.
import { expect, test } from "@playwright/test";
import { Host, signedIn } from "./host";

let host: Host;
test.beforeAll(async () => {
  host = await Host.start();
});
test.afterAll(async () => {
  await host.stop();
});

const fast = "#root_strategy_params_fast";

test("an invalid config shows the server's error at its field and changes nothing", async ({ page }) => {
  await signedIn(page, host, "/bots/ema-cross-btc/config");
  // The id names the bot: shown, not editable.
  await expect(page.locator("#root_id")).toHaveValue("ema-cross-btc");
  await expect(page.locator("#root_id")).not.toBeEditable();
  await page.locator(fast).fill("0");
  await page.getByRole("button", { name: "Review changes" }).click();
  const field = page.locator(".form-group", { has: page.locator(fast) }).first();
  await expect(field).toContainText("less than the minimum of 1");
  await expect(page.getByRole("alert").first()).toContainText("/strategy/params/fast");
  await expect(page.getByRole("button", { name: "Apply" })).toHaveCount(0);
  const versions = await host.api<{ items: unknown[] }>("GET", "/bots/ema-cross-btc/config/versions");
  expect(versions.items).toHaveLength(1);
});

test("apply a valid change after reviewing its diff, then roll back", async ({ page }) => {
  await signedIn(page, host, "/bots/ema-cross-btc/config");
  await expect(page.getByText("in force: v1")).toBeVisible();
  await page.locator(fast).fill("10");
  await page.getByRole("button", { name: "Review changes" }).click();
  const diff = page.getByRole("figure", { name: "Changes against the config in force" });
  await expect(diff).toContainText("- fast: 12");
  await expect(diff).toContainText("+ fast: 10");
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page.getByText("in force: v2")).toBeVisible();
  const versions = page.getByRole("complementary", { name: "Versions" });
  await expect(versions.locator("li").first()).toContainText("v2");
  await expect(versions.locator("li").first()).toContainText("in force");
  const config = await host.api<{ strategy: { params: Record<string, unknown> } }>("GET", "/bots/ema-cross-btc/config");
  // The parameters as written plus the change, nothing more.
  expect(config.strategy.params).toEqual({ fast: 10, slow: 26, size: { percent_of_equity: 50 } });

  // Compare the two versions, then put v1 back.
  await versions.getByLabel("compare version 1").check();
  await versions.getByLabel("compare version 2").check();
  const versionDiff = versions.getByRole("figure", { name: "v1 → v2" });
  await expect(versionDiff).toContainText("+ fast: 10");
  // Only the change and its context: the unchanged rest is folded.
  await expect(versionDiff).toContainText(/unchanged lines/);
  await expect(versionDiff).not.toContainText("capital:");
  await versions.getByRole("button", { name: "Roll back to v1" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Roll back" }).click();
  await expect(page.getByText("in force: v3")).toBeVisible();
  await expect(page.locator(fast)).toHaveValue("12");
  const rolledBack = await host.api<{ strategy: { params: { fast: number } } }>("GET", "/bots/ema-cross-btc/config");
  expect(rolledBack.strategy.params.fast).toBe(12);
});

test("a change made elsewhere meanwhile is not overwritten (If-Match)", async ({ page }) => {
  await signedIn(page, host, "/bots/rsi-reversion-eth/config");
  await expect(page.getByText("in force: v1")).toBeVisible();
  await expect(page).toHaveTitle("rsi-reversion-eth config · stratbox");
  await page.locator("#root_name").fill("my change");
  const current = await host.api<Record<string, unknown>>("GET", "/bots/rsi-reversion-eth/config");
  await host.api("PUT", "/bots/rsi-reversion-eth/config", { ...current, name: "changed by someone else" });
  await expect(page.getByText("in force: v2")).toBeVisible();
  await expect(page.getByText(/changed to v2 since this draft started from v1/)).toBeVisible();
  // The draft is checked, but not offered for applying.
  await page.getByRole("button", { name: "Review changes" }).click();
  await expect(page.getByText("Not applicable to the config in force")).toBeVisible();
  await expect(page.getByRole("button", { name: "Apply" })).toHaveCount(0);
  const after = await host.api<{ name: string }>("GET", "/bots/rsi-reversion-eth/config");
  expect(after.name).toBe("changed by someone else");
  // Starting again from the version in force applies.
  await page.getByRole("button", { name: "Discard changes" }).click();
  await expect(page.locator("#root_name")).toHaveValue("changed by someone else");
  // A change the page has not heard of yet: the server refuses the apply
  // (412), and the page then offers it no more.
  const config = "**/api/v1/bots/rsi-reversion-eth/config";
  await page.route(config, (route) =>
    route.request().method() === "PUT" ? route.continue({ headers: { ...route.request().headers(), "if-match": '"v999"' } }) : route.continue(),
  );
  await page.locator("#root_name").fill("refused change");
  await page.getByRole("button", { name: "Review changes" }).click();
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "does not match" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Apply" })).toHaveCount(0);
  await expect(page.getByText("Not applicable to the config in force")).toBeVisible();
  await page.unroute(config);
  expect((await host.api<{ name: string }>("GET", "/bots/rsi-reversion-eth/config")).name).toBe("changed by someone else");
});

test("every control of the config form is labelled in words", async ({ page }) => {
  await signedIn(page, host, "/bots/ema-cross-btc/config");
  await expect(page.locator("#root_name")).toBeVisible();
  const unnamed = await page.locator("form select, form input:not([type=hidden])").evaluateAll((elements) =>
    elements
      .filter((e) => {
        const labels = [...((e as HTMLInputElement).labels ?? [])];
        return !labels.some((label) => label.textContent?.trim()) && !e.getAttribute("aria-label");
      })
      .map((e) => e.id || e.getAttribute("name")),
  );
  expect(unnamed).toEqual([]);
  await expect(page.getByText("Max open orders", { exact: true })).toBeAttached();
});

test("the YAML view edits the same document", async ({ page }) => {
  await signedIn(page, host, "/bots/breakout-sol/config");
  await page.getByRole("tab", { name: "YAML" }).click();
  const yaml = page.getByLabel("Config as YAML");
  await expect(yaml).toHaveValue(/id: breakout-sol/);
  const text = await yaml.inputValue();
  await yaml.fill(text.replace(/name: .*/, "name: Renamed in YAML"));
  await page.getByRole("tab", { name: "Form" }).click();
  await expect(page.locator("#root_name")).toHaveValue("Renamed in YAML");
  await page.getByRole("tab", { name: "YAML" }).click();
  await yaml.fill("name: [unclosed");
  await expect(page.getByRole("alert").filter({ hasText: "YAML:" })).toBeVisible();
  // What does not read is not sent: the last document that did is not either.
  const review = page.getByRole("button", { name: "Review changes" });
  await expect(review).toBeDisabled();
  // The form cannot show it: leaving for the form asks before the edits are lost.
  await page.getByRole("tab", { name: "Form" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "edits since would be lost" })).toBeVisible();
  await expect(yaml).toHaveValue("name: [unclosed");
  await yaml.fill(text.replace(/name: .*/, "name: Readable again"));
  await expect(review).toBeEnabled();
  await page.getByRole("tab", { name: "YAML" }).click();
  await yaml.fill("name: [unclosed");
  await page.getByRole("tab", { name: "Form" }).click();
  await page.getByRole("button", { name: "Discard them and show the form" }).click();
  await expect(page.locator("#root_name")).toHaveValue("Readable again");
});

test("a new bot from a preset with overrides", async ({ page }) => {
  await signedIn(page, host, "/new");
  await page.getByRole("radio", { name: /ema-cross-paper/ }).click();
  // The server names the override at fault (/overrides/id); the editor shows it at the field.
  await page.locator("#root_id").fill("Bad Id");
  await page.locator("#root_name").fill("From the preset");
  await page.getByRole("button", { name: "Create bot" }).click();
  const idField = page.locator(".form-group", { has: page.locator("#root_id") }).first();
  await expect(idField.locator(".error-detail, .text-danger").first()).toBeVisible();
  await page.locator("#root_id").fill("from-preset");
  await page.locator(fast).fill("8");
  await expect(page.getByRole("figure", { name: "Overrides of ema-cross-paper" })).toContainText("+ fast: 8");
  await page.getByRole("button", { name: "Create bot" }).click();
  await expect(page).toHaveURL(/\/bots\/from-preset$/);
  await expect(page.getByRole("heading", { name: /from-preset/ })).toBeVisible();
  const config = await host.api<{ strategy: { params: { fast: number; slow: number } } }>("GET", "/bots/from-preset/config");
  expect(config.strategy.params).toMatchObject({ fast: 8, slow: 26 });

  // A stopped bot can be deleted from its page, after a confirmation.
  await page.getByRole("button", { name: "delete" }).click();
  await page.getByRole("dialog", { name: "delete from-preset?" }).getByRole("button", { name: "delete" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole("row", { name: "bot from-preset" })).toHaveCount(0);
  await expect(host.api("GET", "/bots/from-preset/status")).rejects.toThrow(/404/);
});

test("a new bot's errors show at their fields", async ({ page }) => {
  await signedIn(page, host, "/new");
  await page.getByRole("radio", { name: "From scratch" }).click();
  // No plugin chosen yet: the parameters say so, after the plugin's field.
  await expect(page.getByText("Choose a plugin: its parameters appear here.")).toBeVisible();
  await expect(page.getByText(/Unsupported field schema/)).toHaveCount(0);
  const plugin = await page.locator("#root_strategy_plugin").boundingBox();
  const params = await page.getByText("Choose a plugin: its parameters appear here.").boundingBox();
  expect(plugin!.y).toBeLessThan(params!.y);
  await page.locator("#root_id").fill("Bad Id");
  await page.getByRole("button", { name: "Create bot" }).click();
  const field = page.locator(".form-group", { has: page.locator("#root_id") }).first();
  await expect(field.locator(".error-detail, .text-danger").first()).toContainText(
    "1 to 64 lowercase letters, digits and '-'",
  );
  await expect(page).toHaveURL(/\/new$/);
});
