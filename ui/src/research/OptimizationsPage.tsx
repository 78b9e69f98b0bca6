// Optimisations: launch one (parameter ranges from the plugin's schema or
// written here, grid, seeded random or model-based sets, an objective or a weighted
// mix, a minimum of trades, optionally walk-forward), follow its progress,
// open its ranked runs.

import { useState } from "react";
import { allowed, useBots, useJobs, useMe, useStartOptimization, useStrategies } from "../api/hooks";
import { ErrorText, Loading } from "../components/States";
import { notify } from "../components/Toasts";
import { firstSource, JobInputs, JobTable, notReady, requestOf, useFollowJobs, type JobInput } from "./jobs";

const OBJECTIVES = ["sharpe", "sortino", "calmar", "total-return", "profit-factor", "max-drawdown"];

interface Search {
  objective: string;
  minTrades: string;
  sampler: "grid" | "random" | "tpe";
  trials: string;
  seed: string;
  ranges: string;
  walk: "" | "rolling" | "anchored";
  train: string;
  test: string;
}

const START: Search = {
  objective: "sharpe",
  minTrades: "1",
  sampler: "grid",
  trials: "100",
  seed: "42",
  ranges: "",
  walk: "",
  train: "90d",
  test: "30d",
};

/** `fast=5..20:5` lines as the request's `params`, and the names given
 * on more than one line (a search that says two things is not sent). */
export function ranges(text: string): { params: Record<string, string>; twice: string[] } {
  const params: Record<string, string> = {};
  const twice: string[] = [];
  for (const line of text.split("\n")) {
    const [name, ...rest] = line.split("=");
    const key = name.trim();
    if (!key || rest.length === 0) continue;
    if (key in params && !twice.includes(key)) twice.push(key);
    params[key] = rest.join("=").trim();
  }
  return { params, twice };
}

/** A strategy's default search written as the Ranges field reads it:
 * what an empty field searches. */
export function rangeLines(search: Record<string, string> | undefined): string {
  return Object.entries(search ?? {})
    .map(([name, range]) => `${name}=${range}`)
    .join("\n");
}

export function OptimizationsPage() {
  useFollowJobs();
  const me = useMe();
  const bots = useBots();
  const strategies = useStrategies();
  const jobs = useJobs("optimizations");
  const start = useStartOptimization();
  const [input, setInput] = useState<JobInput | null>(null);
  const [search, setSearch] = useState<Search>(START);
  if (jobs.isLoading || bots.isLoading) return <Loading what="optimisations" />;
  const form = input ?? { source: firstSource(bots.data), data: "", from: "", to: "" };
  const set = (patch: Partial<Search>) => {
    setSearch({ ...search, ...patch });
    start.reset();
  };
  const searched = ranges(search.ranges);
  // A bot's strategy is known: show what an empty field searches.
  const source = form.source;
  const sourceBot = source.kind === "bot" ? bots.data?.find((bot) => bot.id === source.id) : undefined;
  // A bot names its strategy as "name version".
  const strategy = strategies.data?.items.find((s) => `${s.name} ${s.version}` === sourceBot?.strategy);
  const defaultSearch = rangeLines(strategy?.default_search);
  const submit = () =>
    start.mutate(
      {
        ...requestOf(form),
        objective: search.objective,
        // Sent as written: the server says what is wrong with it.
        min_trades: Number(search.minTrades),
        params: searched.params,
        sampler:
          search.sampler === "grid"
            ? { kind: "grid" }
            : { kind: search.sampler, trials: Number(search.trials), seed: Number(search.seed) },
        walk_forward: search.walk ? { scheme: search.walk, train: search.train, test: search.test } : null,
      },
      { onSuccess: (job) => notify("good", `optimisation ${job.id} queued`) },
    );
  return (
    <section className="research" aria-label="Optimisations">
      <header className="page-head">
        <h1>Optimisations</h1>
      </header>
      <ErrorText error={jobs.error} />
      <JobTable kind="optimizations" jobs={jobs.data ?? []} />
      {allowed(me.data, "POST /api/v1/optimizations") && (
        <div className="job-form" aria-label="New optimisation">
          <h2>New optimisation</h2>
          <JobInputs value={form} onChange={(next) => { setInput(next); start.reset(); }} error={start.error} />
          <div className="search">
            <label>
              Objective{" "}
              <input aria-label="Objective" list="objectives" value={search.objective} onChange={(e) => set({ objective: e.target.value })} />
              <datalist id="objectives">
                {OBJECTIVES.map((o) => (
                  <option key={o} value={o} />
                ))}
                <option value="sharpe=1,max-drawdown=0.05" />
              </datalist>
            </label>
            <label>
              At least <input aria-label="Minimum trades" type="number" min={0} value={search.minTrades} onChange={(e) => set({ minTrades: e.target.value })} /> trades
            </label>
            <label>
              Sets{" "}
              <select aria-label="Sampler" value={search.sampler} onChange={(e) => set({ sampler: e.target.value as Search["sampler"] })}>
                <option value="grid">every combination (grid)</option>
                <option value="random">random (seeded)</option>
                <option value="tpe">model-based (TPE): each set from the runs so far</option>
              </select>
            </label>
            {search.sampler !== "grid" && (
              <>
                <label>
                  Trials <input aria-label="Trials" type="number" min={1} value={search.trials} onChange={(e) => set({ trials: e.target.value })} />
                </label>
                <label title={search.sampler === "tpe" ? "Jobs run on every core: which runs finish first shapes a model-based search, so a seed does not repeat it exactly" : undefined}>
                  Seed <input aria-label="Seed" type="number" value={search.seed} onChange={(e) => set({ seed: e.target.value })} />
                </label>
              </>
            )}
            <label className="wide">
              Ranges, one per line (<code>fast=5..20:5</code>, <code>slow=30,50,80</code>); empty: the plugin's default search{defaultSearch ? " (shown)" : ""}
              <textarea aria-label="Ranges" rows={3} placeholder={defaultSearch} value={search.ranges} onChange={(e) => set({ ranges: e.target.value })} />
            </label>
            <label>
              Walk forward{" "}
              <select aria-label="Walk forward" value={search.walk} onChange={(e) => set({ walk: e.target.value as Search["walk"] })}>
                <option value="">no: one optimisation over the range</option>
                <option value="rolling">rolling windows</option>
                <option value="anchored">anchored windows</option>
              </select>
            </label>
            {search.walk && (
              <>
                <label>
                  Train <input aria-label="Train" value={search.train} onChange={(e) => set({ train: e.target.value })} />
                </label>
                <label>
                  Test <input aria-label="Test" value={search.test} onChange={(e) => set({ test: e.target.value })} />
                </label>
              </>
            )}
          </div>
          {searched.twice.length > 0 && (
            <p className="error" role="alert">
              Ranges: {searched.twice.join(", ")} given on more than one line
            </p>
          )}
          <ErrorText error={start.error} />
          <button
            className="primary"
            onClick={submit}
            disabled={!!notReady(form) || start.isPending || searched.twice.length > 0}
            title={notReady(form)}
          >
            {start.isPending ? "Starting…" : "Run optimisation"}
          </button>
        </div>
      )}
    </section>
  );
}
