// Signing in and out, and what each role sees.
import { expect, test } from "@playwright/test";
import { ADMIN_TOKEN, Host, signedIn } from "./host";

let host: Host;
test.beforeAll(async () => {
  host = await Host.start();
});
test.afterAll(async () => {
  await host.stop();
});

test("log in: a wrong token is refused, the right one opens the fleet", async ({ page }) => {
  await page.goto(host.url + "/login");
  const token = page.getByLabel("API token");
  await token.fill("not-a-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText(/token/i);
  await expect(page.getByRole("table", { name: "Bots" })).toHaveCount(0);

  await token.fill(ADMIN_TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("row", { name: "bot ema-cross-btc" })).toBeVisible();
  await expect(page.getByRole("table", { name: "Bots" }).getByRole("row")).toHaveCount(5); // header + 4 demo bots

  // The token is kept for the tab: a reload stays signed in.
  await page.reload();
  await expect(page.getByRole("row", { name: "bot ema-cross-btc" })).toBeVisible();
});

test("an admin creates a token (shown once) and revokes it; the revoked session returns to the login screen", async ({
  page,
  browser,
}) => {
  await signedIn(page, host, "/admin");
  await page.getByLabel("Token name").fill("night shift");
  await page.getByLabel("Token role").selectOption("viewer");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = page.getByLabel("New token");
  await expect(secret).toContainText("never shown again");
  const viewerToken = (await secret.locator("code").textContent())!.trim();
  expect(viewerToken.length).toBeGreaterThan(20);
  await secret.getByRole("button", { name: "Done" }).click();
  await expect(page.getByLabel("New token")).toHaveCount(0);
  const row = page.getByRole("row", { name: /night shift/ });
  await expect(row).toContainText("viewer");

  // A viewer sees no control anywhere.
  const viewer = await browser.newPage();
  await signedIn(viewer, host, "/", viewerToken);
  await expect(viewer.getByRole("row", { name: "bot ema-cross-btc" })).toBeVisible();
  await expect(viewer.locator(".whoami")).toContainText("night shift · viewer");
  await expect(viewer.getByRole("button", { name: "Emergency stop" })).toHaveCount(0);
  await expect(viewer.getByRole("table", { name: "Bots" }).getByRole("button")).toHaveCount(0);
  await expect(viewer.getByRole("link", { name: "Admin" })).toHaveCount(0);
  await expect(viewer.getByRole("link", { name: "New bot" })).toHaveCount(0);
  await viewer.getByRole("link", { name: "ema-cross-btc" }).click();
  await expect(viewer.getByRole("heading", { name: /ema-cross-btc/ })).toBeVisible();
  await expect(viewer.getByLabel("Commands").getByRole("button")).toHaveCount(0);
  await expect(viewer.getByRole("region", { name: "Manual order" })).toHaveCount(0);
  await viewer.getByRole("link", { name: "Config" }).click();
  await expect(viewer.getByRole("tab", { name: "Form" })).toBeVisible();
  await expect(viewer.getByRole("button", { name: "Review changes" })).toHaveCount(0);
  await expect(viewer.getByRole("note")).toContainText("Read-only: a viewer sees the config");
  await expect(viewer.getByRole("button", { name: /Roll back/ })).toHaveCount(0);
  await viewer.goto(host.url + "/admin");
  await expect(viewer.getByText("This page needs a token with a higher role")).toBeVisible();
  await viewer.goto(host.url + "/strategies");
  await expect(viewer.getByRole("row", { name: /ema-cross/ }).first()).toBeVisible();
  await expect(viewer.getByLabel("Strategy file")).toHaveCount(0);
  await expect(viewer.getByRole("button", { name: "Delete" })).toHaveCount(0);

  // Revoked while its page is open: back to the login screen, saying why.
  await row.getByRole("button", { name: "Revoke" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Revoke" }).click();
  await expect(row).toContainText(/\d/); // the revocation time
  await expect(viewer.getByLabel("API token")).toBeVisible({ timeout: 15_000 });
  await expect(viewer.getByText(/revoked|no longer accepts|closed the live stream/)).toBeVisible();
  await viewer.close();
});

test("an operator sees controls but no admin pages", async ({ page }) => {
  const created = await host.api<{ token: string }>("POST", "/tokens", { name: "desk", role: "operator" });
  await signedIn(page, host, "/", created.token);
  const row = page.getByRole("row", { name: "bot ema-cross-btc" });
  await expect(row.getByRole("button", { name: "stop" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Emergency stop" })).toBeVisible();
  await expect(page.getByRole("link", { name: "New bot" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Admin" })).toHaveCount(0);
});
