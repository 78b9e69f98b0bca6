// The dashboard under load: its production bundle, the time from
// navigation to the fleet showing data, and with 1,000 bots sending about
// 200 events a second, the fleet page's longest main-thread task (from a
// Chromium performance trace) and its memory over the run (5 minutes by
// default; STRATBOX_UI_BENCH_SECONDS to change). Prints the figures and
// writes them to target/ui-bench.json.
import { mkdirSync, readFileSync, writeFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { test, expect, type Page } from "@playwright/test";
import { Host, ROOT, ADMIN_TOKEN } from "../e2e/host";

const BOTS = 1_000;
/** Candles every 5 s: each bot's `bot.updated` per candle is 200 events/s for 1,000 bots. */
const CANDLE_MS = 5_000;
const SECONDS = Number(process.env.STRATBOX_UI_BENCH_SECONDS ?? 300);
const DIST = join(ROOT, "ui/dist");

function bundle() {
  const html = readFileSync(join(DIST, "index.html"), "utf8");
  const initial = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]);
  const gz = (file: string) => gzipSync(readFileSync(join(DIST, file))).length;
  const all = readdirSync(join(DIST, "assets")).filter((f) => f.endsWith(".js"));
  return {
    initial_js_files: initial,
    initial_js_gzip_bytes: initial.reduce((sum, f) => sum + gz(f), 0),
    all_js_gzip_bytes: all.reduce((sum, f) => sum + gz(join("assets", f)), 0),
  };
}

function fleetOf(count: number): string {
  const dir = join(tmpdir(), `stratbox-ui-bench-bots-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const id = `bench-${String(i).padStart(4, "0")}`;
    writeFileSync(
      join(dir, `${id}.yaml`),
      `id: ${id}
name: Bench ${i}
strategy: { plugin: ema-cross, params: { fast: ${5 + (i % 7)}, slow: ${20 + (i % 11)}, size: { percent_of_equity: 20 } } }
market: { symbol: BTCUSDT, timeframe: 1m, feed: { kind: synthetic, seed: 42, interval_ms: ${CANDLE_MS} } }
mode: paper
capital: { quote: USDT, initial: "10000" }
autostart: true
`,
    );
  }
  return dir;
}

/** Sign in, and note when the first bot row appears (ms after navigation start). */
async function instrument(page: Page) {
  await page.addInitScript((token) => {
    sessionStorage.setItem("stratbox.token", token);
    const w = window as unknown as { firstData?: number; longTasks: number[] };
    w.longTasks = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) w.longTasks.push(entry.duration);
    }).observe({ type: "longtask", buffered: true });
    new MutationObserver((_, observer) => {
      if (document.querySelector(".bot-row:not(.head)")) {
        w.firstData = performance.now();
        observer.disconnect();
      }
    }).observe(document, { childList: true, subtree: true });
  }, ADMIN_TOKEN);
}

interface TraceEvent {
  name: string;
  ph: string;
  dur?: number;
  pid: number;
  tid: number;
  args?: { name?: string };
}

/** The longest task on the page's main thread in a trace, ms. */
function longestTask(trace: Buffer): { longest_ms: number; tasks: number; over_50ms: number } {
  const events = (JSON.parse(trace.toString()) as { traceEvents: TraceEvent[] }).traceEvents;
  const mains = new Set(
    events.filter((e) => e.name === "thread_name" && e.args?.name === "CrRendererMain").map((e) => `${e.pid}:${e.tid}`),
  );
  const tasks = events.filter((e) => e.name === "RunTask" && e.ph === "X" && mains.has(`${e.pid}:${e.tid}`));
  const durations = tasks.map((t) => (t.dur ?? 0) / 1000);
  return {
    longest_ms: Math.round(Math.max(0, ...durations) * 10) / 10,
    tasks: durations.length,
    over_50ms: durations.filter((d) => d > 50).length,
  };
}

test("the fleet page with 1,000 bots and 200 events/s", async ({ browser }) => {
  const figures: Record<string, unknown> = { bundle: bundle() };
  const host = await Host.start({ botsDir: fleetOf(BOTS), bin: process.env.STRATBOX_BIN });
  try {
    const listed = await host.api<{ items: unknown[] }>("GET", "/bots?limit=1000");
    expect(listed.items).toHaveLength(BOTS);

    // Time to data: five cold loads (a new browser context each: no cache).
    const loads: number[] = [];
    for (let i = 0; i < 5; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await instrument(page);
      await page.goto(host.url);
      await page.waitForFunction(() => (window as unknown as { firstData?: number }).firstData !== undefined);
      loads.push(await page.evaluate(() => (window as unknown as { firstData: number }).firstData));
      await context.close();
    }
    loads.sort((a, b) => a - b);
    figures.time_to_data_ms = { median: Math.round(loads[2]), max: Math.round(loads[4]), runs: loads.map(Math.round) };

    // The long run: events flowing, the operator scrolling now and then.
    const context = await browser.newContext();
    const page = await context.newPage();
    await instrument(page);
    let frames = 0;
    page.on("websocket", (socket) => socket.on("framereceived", () => (frames += 1)));
    await page.goto(host.url);
    await expect(page.getByRole("row", { name: "bot bench-0000" })).toBeVisible();
    // Long tasks of the loading itself are not the run's.
    await page.waitForTimeout(1_000);
    await page.evaluate(() => ((window as unknown as { longTasks: number[] }).longTasks = []));
    const cdp = await context.newCDPSession(page);
    const heap = async () => {
      await cdp.send("HeapProfiler.collectGarbage");
      const { usedSize } = (await cdp.send("Runtime.getHeapUsage")) as { usedSize: number };
      const { nodes } = (await cdp.send("Memory.getDOMCounters")) as { nodes: number };
      return { heap_mib: Math.round((usedSize / 2 ** 20) * 10) / 10, dom_nodes: nodes };
    };
    const memory = [{ at_s: 0, ...(await heap()) }];
    const started = Date.now();
    const framesAtStart = frames;
    await browser.startTracing(page, { categories: ["disabled-by-default-devtools.timeline", "devtools.timeline"] });
    const traceUntil = started + Math.min(60, SECONDS) * 1000;
    let traced: Buffer | null = null;
    let nextSample = 60;
    while (Date.now() - started < SECONDS * 1000) {
      await page.waitForTimeout(2_000);
      await page.locator(".rows").evaluate((rows) => {
        rows.scrollTop = Math.random() * (rows.scrollHeight - rows.clientHeight);
      });
      if (!traced && Date.now() >= traceUntil) traced = await browser.stopTracing();
      const elapsed = (Date.now() - started) / 1000;
      if (elapsed >= nextSample) {
        memory.push({ at_s: Math.round(elapsed), ...(await heap()) });
        nextSample += 60;
      }
    }
    if (!traced) traced = await browser.stopTracing();
    if (process.env.STRATBOX_UI_BENCH_TRACE) writeFileSync(process.env.STRATBOX_UI_BENCH_TRACE, traced);
    const elapsed = (Date.now() - started) / 1000;
    memory.push({ at_s: Math.round(elapsed), ...(await heap()) });
    figures.events_per_second = Math.round((frames - framesAtStart) / elapsed);
    figures.trace_first_60s = longestTask(traced);
    const longTasks = await page.evaluate(() => (window as unknown as { longTasks: number[] }).longTasks);
    figures.long_tasks_whole_run = {
      count_over_50ms: longTasks.length,
      longest_ms: Math.round(Math.max(0, ...longTasks)),
    };
    figures.memory = memory;
    figures.seconds = Math.round(elapsed);
    await context.close();
  } finally {
    await host.stop();
  }
  const out = join(ROOT, "target/ui-bench.json");
  writeFileSync(out, JSON.stringify(figures, null, 2) + "\n");
  console.log(JSON.stringify(figures, null, 2));
});
