// One hook per resource, over the typed client. Lists the stream keeps
// current are fetched once and then patched in place (see stream.ts); they
// are never polled.

import { type QueryClient, useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiProblem, etagOf, fetchText, unwrap, uploadDataSet, type Schemas } from "./client";
import { keys, type JobKind } from "./keys";

export type BotSummary = Schemas["BotSummary"];
export type BotStatus = Schemas["BotStatus"];
export type Me = Schemas["MeView"];

/** Who the caller is and what its role allows. */
export function useMe() {
  return useQuery({
    queryKey: keys.me,
    queryFn: () => unwrap(api.GET("/api/v1/me")),
    staleTime: 60_000,
  });
}

/** Whether `me` may call `operation` ("POST /api/v1/bots/{id}/start"). */
export function allowed(me: Me | undefined, operation: string): boolean {
  return me?.allowed.includes(operation) ?? false;
}

/** Every bot (all pages), kept current by `bot.*` events. */
export function useBots() {
  return useQuery({
    queryKey: keys.bots,
    queryFn: async () => {
      const all: BotSummary[] = [];
      let cursor: string | undefined;
      do {
        const page = await unwrap(
          api.GET("/api/v1/bots", { params: { query: { limit: "1000", cursor } } }),
        );
        all.push(...page.items);
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      return all;
    },
    staleTime: Infinity,
    // The stream replaces changed bots itself and keeps the others as they
    // are: comparing a thousand bots deeply on every patch would cost more.
    structuralSharing: false,
  });
}

export function useBotStatus(id: string) {
  return useQuery({
    queryKey: keys.status(id),
    queryFn: () => unwrap(api.GET("/api/v1/bots/{id}/status", { params: { path: { id } } })),
    staleTime: Infinity,
    structuralSharing: false,
  });
}

/** The config in force and its version (from the ETag). */
export function useBotConfig(id: string) {
  return useQuery({
    queryKey: keys.config(id),
    queryFn: async () => {
      const { data, error, response } = await api.GET("/api/v1/bots/{id}/config", {
        params: { path: { id } },
      });
      const config = await unwrap(Promise.resolve({ data, error, response }));
      return { config: config as unknown as Record<string, unknown>, etag: etagOf(response) };
    },
    staleTime: Infinity,
  });
}

export function useVersions(id: string) {
  return useQuery({
    queryKey: keys.versions(id),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/bots/{id}/config/versions", {
          params: { path: { id }, query: { limit: "200" } },
        }),
      ),
    staleTime: Infinity,
  });
}

/** A list paged from the API, newest first: orders, fills, trades ("load
 * more" goes back in time; the stream puts new items first). */
function usePaged<T>(key: readonly unknown[], page: (cursor?: string) => Promise<{ items: T[]; next_cursor?: string | null }>) {
  return useInfiniteQuery({
    queryKey: key,
    queryFn: ({ pageParam }) => page(pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    staleTime: Infinity,
  });
}

export function useFills(id: string) {
  return usePaged(keys.fills(id), (cursor) =>
    unwrap(api.GET("/api/v1/bots/{id}/fills", { params: { path: { id }, query: { order: "newest", limit: "100", cursor } } })),
  );
}

export function useTrades(id: string) {
  return usePaged(keys.trades(id), (cursor) =>
    unwrap(api.GET("/api/v1/bots/{id}/trades", { params: { path: { id }, query: { order: "newest", limit: "100", cursor } } })),
  );
}

export function useOrders(id: string, status: "open" | "closed" | "all") {
  return usePaged(keys.orders(id, status), (cursor) =>
    unwrap(
      api.GET("/api/v1/bots/{id}/orders", {
        params: { path: { id }, query: { status, limit: "100", cursor } },
      }),
    ),
  );
}

type EquityPoint = Schemas["EquityPointView"];

/** Most equity points a bot page holds (the newest are kept). */
const EQUITY_POINTS_HELD = 20_000;
const EQUITY_PAGE = 1000;

/** A bot's equity curve, its newest {@link EQUITY_POINTS_HELD} points: loaded
 * once from now backwards, then extended by {@link appendNewEquity} as
 * candles close. */
export function useEquity(id: string) {
  return useQuery({
    queryKey: keys.equity(id),
    queryFn: async () => {
      const newestFirst: EquityPoint[] = [];
      let cursor: string | undefined;
      do {
        const page = await unwrap(
          api.GET("/api/v1/bots/{id}/equity", {
            params: { path: { id }, query: { order: "newest", limit: String(EQUITY_PAGE), cursor } },
          }),
        );
        newestFirst.push(...page.items);
        cursor = page.next_cursor ?? undefined;
      } while (cursor && newestFirst.length < EQUITY_POINTS_HELD);
      return newestFirst.reverse();
    },
    staleTime: Infinity,
  });
}

/** Add the equity points after the last one held: one page at most (the
 * next call goes on from there), not the whole history again. */
export async function appendNewEquity(client: QueryClient, id: string): Promise<void> {
  const held = client.getQueryData<EquityPoint[]>(keys.equity(id));
  const last = held?.at(-1)?.at;
  if (!held || !last) {
    await client.invalidateQueries({ queryKey: keys.equity(id) });
    return;
  }
  const page = await unwrap(
    api.GET("/api/v1/bots/{id}/equity", {
      params: { path: { id }, query: { from: last, limit: String(EQUITY_PAGE) } },
    }),
  );
  // `from` includes the last point held; RFC 3339 UTC times in one format
  // compare as text.
  const newer = page.items.filter((point) => point.at > last);
  if (newer.length === 0) return;
  client.setQueryData<EquityPoint[]>(keys.equity(id), (current) =>
    [...(current ?? []), ...newer].slice(-EQUITY_POINTS_HELD),
  );
}

export function useRisk(id: string) {
  return useQuery({
    queryKey: keys.risk(id),
    queryFn: () => unwrap(api.GET("/api/v1/bots/{id}/risk", { params: { path: { id } } })),
    staleTime: Infinity,
  });
}

export function useLogs(id: string, level: string) {
  return useQuery({
    queryKey: keys.logs(id, level),
    queryFn: () =>
      unwrap(api.GET("/api/v1/bots/{id}/logs", { params: { path: { id }, query: { level, limit: "200" } } })),
    staleTime: Infinity,
  });
}

export function useCandles(symbol: string | undefined, timeframe: string | undefined) {
  return useQuery({
    queryKey: keys.candles(symbol ?? "", timeframe ?? ""),
    enabled: Boolean(symbol && timeframe),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/market/candles", {
          params: { query: { symbol: symbol ?? "", timeframe: timeframe ?? "", limit: "500" } },
        }),
      ),
    staleTime: 5_000,
  });
}

export function useStrategies() {
  return useQuery({
    queryKey: keys.strategies,
    queryFn: () => unwrap(api.GET("/api/v1/strategies", { params: { query: { limit: "1000" } } })),
  });
}

export function usePresets() {
  return useQuery({
    queryKey: keys.presets,
    queryFn: () => unwrap(api.GET("/api/v1/presets", { params: { query: { limit: "1000" } } })),
  });
}

export function useTokens(enabled: boolean) {
  return useQuery({
    queryKey: keys.tokens,
    enabled,
    queryFn: () => unwrap(api.GET("/api/v1/tokens", { params: { query: { limit: "1000" } } })),
  });
}

export function useAudit(filters: Record<string, string>, enabled: boolean) {
  return useQuery({
    queryKey: keys.audit(filters),
    enabled,
    queryFn: () =>
      unwrap(api.GET("/api/v1/audit", { params: { query: { limit: "200", ...filters } } })),
  });
}

export function useSystem() {
  return useQuery({
    queryKey: keys.system,
    queryFn: () => unwrap(api.GET("/api/v1/system")),
    refetchInterval: 5_000, // CPU and memory are not on the stream
  });
}

export function useGlobal() {
  return useQuery({
    queryKey: keys.global,
    queryFn: () => unwrap(api.GET("/api/v1/metrics/global")),
    staleTime: 5_000,
  });
}

export function useEmergency() {
  return useQuery({
    queryKey: keys.emergency,
    queryFn: () => unwrap(api.GET("/api/v1/emergency")),
    staleTime: Infinity,
  });
}

/** The OpenAPI document: the bot config's JSON Schema for forms. */
export function useOpenApi() {
  return useQuery({
    queryKey: keys.openapi,
    queryFn: () => unwrap(api.GET("/api/v1/openapi.json")) as Promise<unknown> as Promise<OpenApiDocument>,
    staleTime: Infinity,
  });
}

export interface OpenApiDocument {
  components: { schemas: Record<string, Record<string, unknown>> };
}

export type Command =
  | "start"
  | "stop"
  | "pause"
  | "resume"
  | "kill"
  | "reset"
  | "close-all"
  | "cancel-pending";

/** A control command on one bot (a stop may also flatten); the answer
 * updates its status at once. */
export function useCommand() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ id, command, flatten }: { id: string; command: Command; flatten?: boolean }) =>
      unwrap(
        api.POST(`/api/v1/bots/{id}/${command}` as "/api/v1/bots/{id}/stop", {
          params: { path: { id } },
          body: flatten ? { flatten: true } : undefined,
        }),
      ),
    onSuccess: (status) => {
      client.setQueryData(keys.status(status.id), status);
      client.setQueryData<BotSummary[]>(keys.bots, (bots) =>
        bots?.map((bot) => (bot.id === status.id ? { ...bot, ...status } : bot)),
      );
    },
  });
}

export type ConfigApplied = Schemas["ConfigApplied"];
type Doc = Record<string, unknown>;

/** After a config change: the status, config and versions as the server has them. */
function configChanged(client: ReturnType<typeof useQueryClient>, id: string, applied: ConfigApplied) {
  client.setQueryData(keys.status(id), applied.status);
  client.setQueryData(keys.config(id), { config: applied.config as Doc, etag: `"v${applied.version}"` });
  void client.invalidateQueries({ queryKey: keys.versions(id) });
  client.setQueryData<BotSummary[]>(keys.bots, (bots) =>
    bots?.map((bot) => (bot.id === id ? { ...bot, ...applied.status } : bot)),
  );
}

/** Check a config against the bot as it runs (schema, plugin, hot-swap rules); changes nothing. */
export function useValidateConfig(id: string) {
  return useMutation({
    mutationFn: (config: Doc) =>
      unwrap(
        api.POST("/api/v1/bots/{id}/config/validate", {
          params: { path: { id } },
          body: config as unknown as Schemas["BotConfig"],
        }),
      ),
  });
}

/** Apply a config, only if the one in force is still `etag` (If-Match). */
export function useApplyConfig(id: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ config, etag }: { config: Doc; etag: string | null }) =>
      unwrap(
        api.PUT("/api/v1/bots/{id}/config", {
          params: { path: { id } },
          body: config as unknown as Schemas["BotConfig"],
          headers: etag ? { "If-Match": etag } : {},
        }),
      ),
    onSuccess: (applied) => configChanged(client, id, applied),
    onError: (error) => staleConfig(client, id, error),
  });
}

/** A change refused because the config in force moved on (412): read the
 * config again, so that starting afresh starts from the newer one. */
function staleConfig(client: QueryClient, id: string, error: unknown) {
  if (error instanceof ApiProblem && error.status === 412) void client.invalidateQueries({ queryKey: keys.config(id) });
}

/** Put an earlier version back in force (as a new version). */
export function useRollback(id: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ version, etag }: { version: number; etag: string | null }) =>
      unwrap(
        api.POST("/api/v1/bots/{id}/config/rollback", {
          params: { path: { id } },
          body: { version },
          headers: etag ? { "If-Match": etag } : {},
        }),
      ),
    onSuccess: (applied) => configChanged(client, id, applied),
    onError: (error) => staleConfig(client, id, error),
  });
}

/** A fresh idempotency key (works outside secure contexts too). */
export function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Create a bot from a whole config or from a preset with overrides; the
 * caller keeps `key` for one intended creation, so a retry never makes two. */
export function useCreateBot() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ body, key }: { body: Doc | { preset: string; overrides: Doc }; key: string }) =>
      unwrap(
        api.POST("/api/v1/bots", {
          body: body as unknown as Schemas["BotConfig"],
          headers: { "Idempotency-Key": key },
        }),
      ),
    onSuccess: () => void client.invalidateQueries({ queryKey: keys.bots }),
  });
}

/** Delete a stopped or failed bot: its config history, state and records go. */
export function useDeleteBot() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE("/api/v1/bots/{id}", { params: { path: { id } } })),
    onSuccess: (_, id) => {
      client.setQueryData<BotSummary[]>(keys.bots, (bots) => bots?.filter((bot) => bot.id !== id));
      client.removeQueries({ queryKey: keys.status(id) });
    },
  });
}

export function useDeleteStrategy() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (name: string) =>
      unwrap(api.DELETE("/api/v1/strategies/{name}", { params: { path: { name } } })),
    onSuccess: () => void client.invalidateQueries({ queryKey: keys.strategies }),
  });
}

export function useCreateToken() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["NewToken"]) => unwrap(api.POST("/api/v1/tokens", { body })),
    onSuccess: () => void client.invalidateQueries({ queryKey: keys.tokens }),
  });
}

export function useRevokeToken() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE("/api/v1/tokens/{id}", { params: { path: { id } } })),
    onSuccess: () => void client.invalidateQueries({ queryKey: keys.tokens }),
  });
}

export type BulkCommand = Schemas["BulkCommand"]["command"];

/** One command for a selection of bots, in one request; the summaries of
 * those that changed come back on the stream. */
export function useBulkCommand() {
  return useMutation({
    mutationFn: ({ bots, command }: { bots: string[]; command: BulkCommand }) =>
      unwrap(api.POST("/api/v1/bots/commands", { body: { command, bots } })),
  });
}

export type DataSet = Schemas["DataSetView"];
export type Job = Schemas["BacktestView"];

/** The stored data sets (changed only by this UI's own calls, which refetch). */
export function useDataSets() {
  return useQuery({
    queryKey: keys.dataSets,
    queryFn: () => unwrap(api.GET("/api/v1/data")),
  });
}

export function useUploadDataSet() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ symbol, timeframe, file }: { symbol: string; timeframe: string; file: File }) =>
      uploadDataSet(symbol, timeframe, file, file.name),
    onSuccess: () => void client.invalidateQueries({ queryKey: keys.dataSets }),
  });
}

export function useDeleteDataSet() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ symbol, timeframe }: { symbol: string; timeframe: string }) =>
      unwrap(api.DELETE("/api/v1/data/{symbol}/{timeframe}", { params: { path: { symbol, timeframe } } })),
    onSuccess: () => void client.invalidateQueries({ queryKey: keys.dataSets }),
  });
}

/** Backtest jobs or optimisations, newest first (the first 200), kept
 * current by `backtest.*` events while a research page follows them, and
 * fetched again whenever one opens (events go unheard between pages). */
export function useJobs(kind: JobKind) {
  return useQuery({
    queryKey: keys.jobs(kind),
    queryFn: async () => {
      const page =
        kind === "backtests"
          ? await unwrap(api.GET("/api/v1/backtests", { params: { query: { limit: "200" } } }))
          : await unwrap(api.GET("/api/v1/optimizations", { params: { query: { limit: "200" } } }));
      return page.items;
    },
    staleTime: 0,
  });
}

export function useJob(kind: JobKind, id: string) {
  return useQuery({
    queryKey: keys.job(kind, id),
    queryFn: () =>
      kind === "backtests"
        ? unwrap(api.GET("/api/v1/backtests/{id}", { params: { path: { id } } }))
        : unwrap(api.GET("/api/v1/optimizations/{id}", { params: { path: { id } } })),
    staleTime: 0,
  });
}

/** A finished job's full result (a backtest's JSON, an optimisation's ranked runs). */
export function useJobResult(kind: JobKind, id: string, done: boolean) {
  return useQuery({
    queryKey: keys.jobResult(kind, id),
    queryFn: async () => JSON.parse(await fetchText(`/api/v1/${kind}/${encodeURIComponent(id)}/result`)) as Record<string, unknown>,
    enabled: done,
    staleTime: Infinity,
  });
}

/** A finished job's HTML report, shown in a sandboxed frame. */
export function useJobReport(kind: JobKind, id: string, done: boolean) {
  return useQuery({
    queryKey: keys.jobReport(kind, id),
    queryFn: () => fetchText(`/api/v1/${kind}/${encodeURIComponent(id)}/report`),
    enabled: done,
    staleTime: Infinity,
  });
}

export function useStartBacktest() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["BacktestRequest"]) => unwrap(api.POST("/api/v1/backtests", { body })),
    onSuccess: () => void client.invalidateQueries({ queryKey: keys.jobs("backtests") }),
  });
}

export function useStartOptimization() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["OptimizationRequest"]) => unwrap(api.POST("/api/v1/optimizations", { body })),
    onSuccess: () => void client.invalidateQueries({ queryKey: keys.jobs("optimizations") }),
  });
}

/** Cancel a running job, or delete a finished one. */
export function useDeleteJob(kind: JobKind) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) =>
      kind === "backtests"
        ? unwrap(api.DELETE("/api/v1/backtests/{id}", { params: { path: { id } } }))
        : unwrap(api.DELETE("/api/v1/optimizations/{id}", { params: { path: { id } } })),
    onSuccess: () => void client.invalidateQueries({ queryKey: keys.jobs(kind) }),
  });
}

/** The bot config an optimisation's run ranked `rank` makes (under an id
 * and name of its own), once `wanted`. */
export function useOptimizedConfig(id: string, rank: number, wanted: boolean) {
  return useQuery({
    queryKey: keys.optimizedConfig(id, rank),
    queryFn: async () => {
      const config = await unwrap(
        api.GET("/api/v1/optimizations/{id}/config", { params: { path: { id }, query: { rank: String(rank) } } }),
      );
      return config as unknown as Doc;
    },
    enabled: wanted,
    staleTime: Infinity,
  });
}
