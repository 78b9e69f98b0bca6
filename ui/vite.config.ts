/// <reference types="vitest/config" />
// The control UI's build: `npm run build` writes dist/, which `stratbox
// serve` serves at `/`. `npm run dev` (make ui-dev) proxies the API to a
// running host (STRATBOX_API, default http://127.0.0.1:8080).
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

const api = process.env.STRATBOX_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  server: {
    port: 5173,
    proxy: { "/api": { target: api, ws: true } },
  },
  build: {
    outDir: "dist",
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
