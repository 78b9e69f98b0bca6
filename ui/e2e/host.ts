// A real `stratbox serve` for end-to-end tests: its own data directory, the
// demo bots and presets, the built UI, on a free port of 127.0.0.1 (kept
// across a restart), removed with everything it wrote when stopped.

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import type { Page } from "@playwright/test";

export const ROOT = resolve(fileURLToPath(new URL(".", import.meta.url)), "../..");
export const ADMIN_TOKEN = "e2e-admin-token-0123456789abcdefghijklmnop";
const BIN = process.env.STRATBOX_BIN ?? join(ROOT, "target/debug/stratbox");
const PLUGINS = process.env.STRATBOX_PLUGIN_DIR ?? join(ROOT, "target/plugins");
export const FIXTURES = process.env.STRATBOX_FIXTURE_DIR ?? join(ROOT, "target/fixtures");
/** Compiled plugins, shared by every host of the run (compiling is the slow part of a start). */
const CACHE = join(ROOT, "target/e2e-plugin-cache");

export interface HostOptions {
  /** Bot configs to start with (default: the demo bots of config/bots). */
  botsDir?: string;
  /** Extra settings (YAML lines). */
  settings?: string;
  /** The binary (default: the debug build). */
  bin?: string;
}

export class Host {
  private child: ChildProcess | null = null;
  private output: string[] = [];
  port = 0;

  private constructor(
    readonly dir: string,
    private readonly options: HostOptions,
  ) {}

  static async start(options: HostOptions = {}): Promise<Host> {
    const dir = mkdtempSync(join(tmpdir(), "stratbox-e2e-"));
    const bots = join(dir, "bots");
    cpSync(options.botsDir ?? join(ROOT, "config/bots"), bots, { recursive: true });
    writeFileSync(
      join(dir, "stratbox.yaml"),
      [
        "listen: 127.0.0.1:0",
        `data_dir: ${JSON.stringify(join(dir, "data"))}`,
        `plugins_dir: ${JSON.stringify(PLUGINS)}`,
        `bots_dir: ${JSON.stringify(bots)}`,
        `presets_dir: ${JSON.stringify(join(ROOT, "config/presets"))}`,
        `ui_dir: ${JSON.stringify(join(ROOT, "ui/dist"))}`,
        "heartbeat_secs: 1",
        "rate_limits:",
        "  viewer: { per_second: 500, burst: 1000 }",
        "  operator: { per_second: 500, burst: 1000 }",
        "  admin: { per_second: 500, burst: 1000 }",
        options.settings ?? "",
      ].join("\n"),
    );
    const host = new Host(dir, options);
    await host.spawn("127.0.0.1:0");
    return host;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private spawn(listen: string): Promise<void> {
    const child = spawn(
      this.options.bin ?? BIN,
      ["serve", "--config", join(this.dir, "stratbox.yaml"), "--listen", listen, "--cache-dir", CACHE],
      { env: { ...process.env, STRATBOX_ADMIN_TOKEN: ADMIN_TOKEN, RUST_LOG: "warn" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.child = child;
    createInterface({ input: child.stderr! }).on("line", (line) => this.output.push(line));
    return new Promise((resolveListening, reject) => {
      const timer = setTimeout(() => reject(new Error(`the host did not start:\n${this.output.join("\n")}`)), 60_000);
      createInterface({ input: child.stdout! }).on("line", (line) => {
        this.output.push(line);
        try {
          const message = JSON.parse(line) as { event?: string; address?: string };
          if (message.event === "listening" && message.address) {
            this.port = Number(message.address.split(":").pop());
            clearTimeout(timer);
            resolveListening();
          }
        } catch {
          // not a JSON line
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the host exited (${code}):\n${this.output.join("\n")}`));
      });
    });
  }

  /** Stop the process gracefully (SIGTERM) and wait for it. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((done) => {
      child.once("exit", () => done());
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 10_000);
    });
    this.child = null;
  }

  /** Start again on the same port, on the same data. */
  async restart(): Promise<void> {
    await this.kill();
    await this.spawn(`127.0.0.1:${this.port}`);
  }

  /** Stop and remove everything it wrote. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A call to the API as admin (or with `token`), its JSON answer. */
  async api<T = unknown>(method: string, path: string, body?: unknown, token = ADMIN_TOKEN): Promise<T> {
    const response = await fetch(`${this.url}/api/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** Open the dashboard at `path` already signed in with `token`. */
/** `count` synthetic 1m candles (seed `seed`) written to `csv` by the CLI. */
export function synthesizeCsv(csv: string, count: number, seed: number): void {
  execFileSync(BIN, ["data", "synth", "--count", String(count), "--seed", String(seed), "--out", csv]);
}

/** Store `count` synthetic candles (seed `seed`) as the data set `symbol/1m`,
 * through the API as a client would; `csv` is where the file is made. */
export async function syntheticDataSet(host: Host, symbol: string, count: number, seed: number, csv: string): Promise<void> {
  synthesizeCsv(csv, count, seed);
  const upload = await fetch(`${host.url}/api/v1/data?symbol=${symbol}&timeframe=1m`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "text/csv" },
    body: readFileSync(csv),
  });
  if (upload.status !== 201) throw new Error(`upload answered ${upload.status}: ${await upload.text()}`);
}

export async function signedIn(page: Page, host: Host, path = "/", token = ADMIN_TOKEN): Promise<void> {
  await page.addInitScript((value) => {
    if (!sessionStorage.getItem("stratbox.token")) sessionStorage.setItem("stratbox.token", value);
  }, token);
  await page.goto(host.url + path);
}
