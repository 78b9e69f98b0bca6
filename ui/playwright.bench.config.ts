// The dashboard's benchmark (`make ui-bench`): the same browser and host
// as the end-to-end tests, one long run.
import { defineConfig } from "@playwright/test";
import base from "./playwright.config";

export default defineConfig({
  ...base,
  testDir: "bench",
  timeout: 0,
  reporter: [["list"]],
  // Playwright's own tracing would load the page it measures.
  use: { ...base.use, trace: "off", screenshot: "off" },
});
