// One query-key scheme for every resource: the stream patches exactly the
// entries these keys name, and nothing else.

export const keys = {
  me: ["me"] as const,
  bots: ["bots"] as const,
  bot: (id: string) => ["bot", id] as const,
  status: (id: string) => ["bot", id, "status"] as const,
  config: (id: string) => ["bot", id, "config"] as const,
  versions: (id: string) => ["bot", id, "versions"] as const,
  orders: (id: string, status: "open" | "closed" | "all") => ["bot", id, "orders", status] as const,
  fills: (id: string) => ["bot", id, "fills"] as const,
  trades: (id: string) => ["bot", id, "trades"] as const,
  equity: (id: string) => ["bot", id, "equity"] as const,
  risk: (id: string) => ["bot", id, "risk"] as const,
  logs: (id: string, level: string) => ["bot", id, "logs", level] as const,
  candles: (symbol: string, timeframe: string) => ["candles", symbol, timeframe] as const,
  strategies: ["strategies"] as const,
  strategy: (name: string) => ["strategies", name] as const,
  presets: ["presets"] as const,
  tokens: ["tokens"] as const,
  audit: (filters: Record<string, string>) => ["audit", filters] as const,
  system: ["system"] as const,
  global: ["global"] as const,
  emergency: ["emergency"] as const,
  openapi: ["openapi"] as const,
  dataSets: ["data"] as const,
  jobs: (kind: JobKind) => [kind] as const,
  job: (kind: JobKind, id: string) => [kind, id] as const,
  jobResult: (kind: JobKind, id: string) => [kind, id, "result"] as const,
  jobReport: (kind: JobKind, id: string) => [kind, id, "report"] as const,
  optimizedConfig: (id: string, rank: number) => ["optimizations", id, "config", rank] as const,
};

/** Backtest jobs and optimisations share one job model (and one event). */
export type JobKind = "backtests" | "optimizations";
