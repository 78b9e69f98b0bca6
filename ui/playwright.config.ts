// End-to-end tests: Playwright drives Debian's Chromium (never a browser it
// downloads), headless and kept off the network, against real `stratbox
// serve` processes each spec file starts on a free port (e2e/host.ts).
import { defineConfig } from "@playwright/test";

const chromium = process.env.STRATBOX_CHROMIUM ?? "/usr/bin/chromium";

export default defineConfig({
  testDir: "e2e",
  // Each file starts its own host; two cores run one browser at a time.
  workers: 1,
  fullyParallel: false,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  retries: 0,
  reporter: [["list"]],
  outputDir: "test-results",
  use: {
    headless: true,
    viewport: { width: 1400, height: 900 },
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: chromium,
      // Playwright gives every browser a fresh, temporary --user-data-dir.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        "--metrics-recording-only",
      ],
    },
  },
});
