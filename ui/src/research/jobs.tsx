// What the backtest and optimisation pages share: the job list (state,
// progress, headline figures), the choice of what a job runs (a bot's
// config or one written here, with the plugin's parameter form), the data
// set and range, and the report frame.

import { useEffect, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { ApiProblem } from "../api/client";
import { allowed, useBots, useDataSets, useDeleteJob, useJobReport, useMe, type BotSummary, type Job } from "../api/hooks";
import type { JobKind } from "../api/keys";
import { useFollow } from "../api/streamContext";
import { Empty, ErrorText, Loading } from "../components/States";
import { ConfigEditor } from "../config/ConfigEditor";
import type { Doc } from "../config/document";
import { useTheme, type Theme } from "../lib/theme";
import { formatTime } from "../lib/time";

/** Progress and completion of every job arrive on the `backtests` channel. */
export function useFollowJobs() {
  useFollow("jobs", { channels: ["backtests"], bots: [] });
}

const percent = (value: number | null | undefined) => (value == null ? "–" : `${value.toFixed(2)} %`);
const ratio = (value: number | null | undefined) => (value == null ? "–" : value.toFixed(2));

export function JobState({ job }: { job: Job }) {
  if (job.state === "running" || job.state === "queued") {
    const done = Math.round(job.progress * 100);
    // Backtests and optimisations share the host's research workers
    // (`limits.backtest_workers`, one by default): a job waits for a free one.
    const queued = job.state === "queued";
    return (
      <span
        className="job-progress"
        title={queued ? "waits for a free research worker: jobs run in the order they came" : undefined}
      >
        <progress max={100} value={done} aria-label={`${job.id} progress`} /> {queued ? "queued, waits its turn" : `${done} %`}
      </span>
    );
  }
  return <span className={`job-state ${job.state}`}>{job.state}</span>;
}

/** Jobs of one kind, newest first; `selected`/`onSelect` pick runs to compare. */
export function JobTable({
  kind,
  jobs,
  selected,
  onSelect,
}: {
  kind: JobKind;
  jobs: Job[];
  selected?: string[];
  onSelect?: (id: string) => void;
}) {
  const me = useMe();
  const remove = useDeleteJob(kind);
  const canDelete = allowed(me.data, `DELETE /api/v1/${kind}/{id}`);
  if (jobs.length === 0) return <Empty>No {kind === "backtests" ? "backtests" : "optimisations"} yet.</Empty>;
  return (
    <>
      <table className="data jobs">
        <thead>
          <tr>
            {onSelect && <th>Compare</th>}
            <th>Job</th>
            <th>Strategy</th>
            <th>Data</th>
            {kind === "optimizations" && <th>Search</th>}
            <th>State</th>
            <th>Return</th>
            <th>Sharpe</th>
            <th>Max DD</th>
            <th>Trades</th>
            <th>Queued</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {jobs.map((job) => (
            <tr key={job.id}>
              {onSelect && (
                <td>
                  <input
                    type="checkbox"
                    aria-label={`compare ${job.id}`}
                    disabled={job.state !== "done"}
                    checked={selected?.includes(job.id) ?? false}
                    onChange={() => onSelect(job.id)}
                  />
                </td>
              )}
              <td>
                <Link to={`/${kind}/${job.id}`}>{job.id}</Link>
              </td>
              <td>
                {job.plugin} {job.plugin_version}
              </td>
              <td>
                {job.data}
                {rangeText(job.from, job.to)}
              </td>
              {kind === "optimizations" && <td>{job.optimization ? searchText(job.optimization) : "–"}</td>}
              <td>
                <JobState job={job} />
              </td>
              <td className="num">{job.state === "done" ? percent(job.total_return_pct) : "–"}</td>
              <td className="num">{job.state === "done" ? ratio(job.sharpe) : "–"}</td>
              <td className="num">{job.state === "done" ? percent(job.max_drawdown_pct) : "–"}</td>
              <td className="num">{job.trades ?? "–"}</td>
              <td>{formatTime(job.created)}</td>
              <td>
                {canDelete && (
                  <button className="small" onClick={() => remove.mutate(job.id)} disabled={remove.isPending}>
                    {job.state === "running" || job.state === "queued" ? "cancel" : "delete"}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <ErrorText error={remove.error} />
    </>
  );
}

/** How an optimisation searches: "every combination", "200 random sets",
 * with ", walk-forward (rolling)" when it walks forward. */
export function searchText(optimization: NonNullable<Job["optimization"]>): string {
  const { sampler, walk_forward: walk } = optimization;
  const sets = {
    grid: "every combination",
    random: `${"trials" in sampler ? sampler.trials : ""} random sets`,
    tpe: `${"trials" in sampler ? sampler.trials : ""} model-based (TPE) sets`,
  }[sampler.kind];
  return walk ? `${sets}, walk-forward (${walk.scheme})` : sets;
}

/** The ranges an optimisation searched, as the Ranges field takes them
 * ("fast=3..21:2; slow=25..205:20"); a job that holds none searched its
 * plugin's default search. */
export function rangesText(optimization: NonNullable<Job["optimization"]>): string {
  const ranges = Object.entries(optimization.params);
  return ranges.length === 0
    ? "the plugin's default search"
    : ranges.map(([name, range]) => `${name}=${range}`).join("; ");
}

/** What a job runs: a bot's config, or one written here. */
export type Source = { kind: "bot"; id: string } | { kind: "config"; config: Doc };

const BLANK: Doc = {
  strategy: { plugin: "", params: {} },
  market: { symbol: "BTCUSDT", timeframe: "1m" },
  capital: { quote: "USDT", initial: "10000" },
};

/** A problem about the request's `config`, with its pointers made relative
 * to the config, so the editor shows each at its field. */
function asConfigProblem(error: unknown): ApiProblem | null {
  if (!(error instanceof ApiProblem)) return null;
  const errors = (error.problem.errors ?? [])
    .filter((e) => e.pointer.startsWith("/config"))
    .map((e) => ({ ...e, pointer: e.pointer.slice("/config".length) }));
  return new ApiProblem(error.status, { ...error.problem, errors });
}

/** `config` on the market of the data set `data` (`SYMBOL/TIMEFRAME`). */
function onMarketOf(config: Doc, data: string): Doc {
  if (!data) return config;
  const [symbol, timeframe] = data.split("/");
  return { ...config, market: { ...((config.market as Doc) ?? {}), symbol, timeframe } };
}

/** Parameters as they read in a table: `fast=12, slow=26`. */
export function formatParams(params: unknown, leaveOut: Record<string, unknown> = {}): string {
  if (!params || typeof params !== "object") return "–";
  const shown = Object.entries(params as Record<string, unknown>).filter(([name]) => !Object.prototype.hasOwnProperty.call(leaveOut, name));
  if (shown.length === 0) return "–";
  return shown.map(([name, value]) => `${name}=${typeof value === "object" ? JSON.stringify(value) : String(value)}`).join(", ");
}

/** The parameters every one of several sets holds at the same value (the
 * ones a search did not vary), said once rather than on every row. */
export function heldParams(sets: unknown[]): Record<string, unknown> {
  const objects = sets.filter((set): set is Record<string, unknown> => !!set && typeof set === "object");
  if (objects.length < 2) return {};
  const [first, ...rest] = objects;
  return Object.fromEntries(
    Object.entries(first).filter(([name, value]) =>
      rest.every((set) => Object.prototype.hasOwnProperty.call(set, name) && JSON.stringify(set[name]) === JSON.stringify(value)),
    ),
  );
}

export interface JobInput {
  source: Source;
  data: string;
  from: string;
  to: string;
  /** False while a config written here does not read (its YAML tab): the
   * last one that did must not be sent. */
  readable?: boolean;
}

/** Why a job form cannot be sent yet, if it cannot. */
export function notReady(input: JobInput): string | undefined {
  if (!input.data) return "choose a data set";
  if (input.readable === false) return "the YAML does not read as a document";
  return undefined;
}

/** The common part of a job form: source, data set, range. */
export function JobInputs({ value, onChange, error }: { value: JobInput; onChange: (next: JobInput) => void; error: unknown }) {
  const bots = useBots();
  const dataSets = useDataSets();
  const [draft, setDraft] = useState<Doc>(BLANK);
  if (bots.isLoading || dataSets.isLoading) return <Loading what="bots and data sets" />;
  const sets = dataSets.data?.items ?? [];
  const allBots = bots.data ?? [];
  const source = value.source;
  const chooseData = (data: string) => {
    if (source.kind === "config") {
      const config = onMarketOf(source.config, data);
      setDraft(config);
      onChange({ ...value, data, source: { kind: "config", config } });
    } else {
      onChange({ ...value, data, source: sourceFor(source, data, allBots) });
    }
  };
  const chosenBot = source.kind === "bot" ? allBots.find((bot) => bot.id === source.id) : undefined;
  // The days the chosen data set covers bound the range's pickers.
  const chosenSet = sets.find((set) => `${set.symbol}/${set.timeframe}` === value.data);
  const firstDay = chosenSet ? utcDay(Date.parse(chosenSet.first)) : undefined;
  const lastDay = chosenSet ? utcDay(Date.parse(chosenSet.last)) : undefined;
  // Days as YYYY-MM-DD compare as text; a bound left open stays open.
  const later = (a?: string, b?: string) => (!a ? b : !b ? a : a > b ? a : b);
  const earlier = (a?: string, b?: string) => (!a ? b : !b ? a : a < b ? a : b);
  const otherTimeframe =
    chosenBot && value.data && chosenBot.timeframe !== value.data.split("/")[1] ? chosenBot : undefined;
  return (
    <div className="job-inputs">
      <label>
        Data set{" "}
        <select aria-label="Data set" value={value.data} onChange={(e) => chooseData(e.target.value)}>
          <option value="">choose…</option>
          {sets.map((set) => (
            <option key={`${set.symbol}/${set.timeframe}`} value={`${set.symbol}/${set.timeframe}`}>
              {set.symbol}/{set.timeframe} ({set.count.toLocaleString()} candles, {formatTime(set.first).slice(0, 10)} to {formatTime(set.last).slice(0, 10)})
            </option>
          ))}
        </select>
      </label>
      {sets.length === 0 && (
        <p className="muted job-hint" role="note">
          No data set yet: <Link to="/data">upload one</Link> on the Data page, then choose it here.
        </p>
      )}
      <label>
        From{" "}
        <input
          aria-label="From"
          type="date"
          min={firstDay}
          max={earlier(value.to, lastDay)}
          value={value.from}
          onChange={(e) => onChange({ ...value, from: e.target.value })}
        />
      </label>
      <label>
        To (included){" "}
        <input
          aria-label="To"
          type="date"
          min={later(value.from, firstDay)}
          max={lastDay}
          value={value.to}
          onChange={(e) => onChange({ ...value, to: e.target.value })}
        />
      </label>
      <label>
        Strategy from{" "}
        <select
          aria-label="Strategy from"
          value={source.kind === "bot" ? `bot:${source.id}` : "config"}
          onChange={(e) =>
            onChange({
              ...value,
              source:
                e.target.value === "config"
                  ? { kind: "config", config: onMarketOf(draft, value.data) }
                  : { kind: "bot", id: e.target.value.slice(4) },
            })
          }
        >
          {allBots.map((bot) => (
            <option key={bot.id} value={`bot:${bot.id}`}>
              the config of bot {bot.id} ({bot.symbol} {bot.timeframe})
            </option>
          ))}
          <option value="config">a config written here</option>
        </select>
      </label>
      {otherTimeframe && (
        <p className="warn job-hint" role="note">
          Bot {otherTimeframe.id} trades {otherTimeframe.timeframe} candles; {value.data} has {value.data.split("/")[1]} candles, so
          its backtest will fail. Choose a data set of its timeframe, or write a config here.
        </p>
      )}
      {source.kind === "config" && (
        <ConfigEditor
          value={source.config}
          onChange={(config) => {
            setDraft(config);
            // A document the editor hands over is one that reads.
            onChange({ ...value, readable: true, source: { kind: "config", config } });
          }}
          onReadable={(readable) => onChange({ ...value, readable })}
          problem={asConfigProblem(error)}
        />
      )}
    </div>
  );
}

const DAY_MS = 86_400_000;

/** The UTC day an instant (epoch ms) falls on, `YYYY-MM-DD`. */
export const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The request fields a `JobInput` makes. Both dates are days included
 * (UTC): a job runs on the candles opening from the start of `from` to the
 * end of `to` (the API's `to` is the first instant left out). */
export function requestOf(input: JobInput) {
  const start = (date: string) => (date ? `${date}T00:00:00Z` : null);
  const afterEnd = (date: string) =>
    date ? new Date(Date.parse(`${date}T00:00:00Z`) + DAY_MS).toISOString().replace(".000Z", "Z") : null;
  return {
    data: input.data,
    from: start(input.from),
    to: afterEnd(input.to),
    ...(input.source.kind === "bot" ? { bot_id: input.source.id } : { config: input.source.config }),
  };
}

/** The candles a job ran over, as a sentence's end (`from`, `to`: the
 * API's range, `to` left out). A range of whole UTC days reads as the days
 * the form took, included; any other bound as its instant. */
export function rangeText(from: string | null | undefined, to: string | null | undefined): string {
  if (!from && !to) return ", all of it";
  const midnight = (at: number) => !Number.isNaN(at) && at % DAY_MS === 0;
  const start = from ? Date.parse(from) : NaN;
  const end = to ? Date.parse(to) : NaN;
  const first = !from ? "from the first candle" : midnight(start) ? `from ${utcDay(start)}` : `from ${formatTime(from)}`;
  const last = !to
    ? "to the last candle"
    : midnight(end)
      ? `to the end of ${utcDay(end - DAY_MS)}`
      : `until ${formatTime(to)} (not included)`;
  const utc = midnight(start) || midnight(end) ? " (UTC)" : "";
  return ` ${first} ${last}${utc}`;
}

/** The candles a finished backtest ran on: its first and last day (both
 * included, UTC) and how many, as its report says them; undefined until it
 * has run. */
export function coveredText(job: Pick<Job, "ran_from" | "ran_to" | "candles">): string | undefined {
  if (!job.ran_from || !job.ran_to) return undefined;
  const [start, end] = [Date.parse(job.ran_from), Date.parse(job.ran_to)];
  return `${utcDay(start)} to ${utcDay(Math.max(start, end - 1))}, ${String(job.candles)} candles`;
}

export function firstSource(bots: { id: string }[] | undefined): Source {
  return bots && bots.length > 0 ? { kind: "bot", id: bots[0].id } : { kind: "config", config: BLANK };
}

/** A bot's market as a data set names it: `SYMBOL/TIMEFRAME`. */
const marketOf = (bot: Pick<BotSummary, "symbol" | "timeframe">) => `${bot.symbol}/${bot.timeframe}`;

/** The source to keep when the data set becomes `data`: a bot's config
 * runs on its own timeframe (a backtest of a 15m strategy over 1m candles
 * fails), so a bot on another timeframe gives way to the first bot on
 * `data`'s market, or else on its timeframe. A bot on the same timeframe
 * stays, whatever its symbol: trying a strategy on another symbol's
 * candles is what the data set is for. Anything else stays. */
export function sourceFor(source: Source, data: string, bots: Pick<BotSummary, "id" | "symbol" | "timeframe">[]): Source {
  if (source.kind !== "bot" || !data) return source;
  const current = bots.find((bot) => bot.id === source.id);
  const timeframe = data.split("/")[1];
  if (!current || current.timeframe === timeframe) return source;
  const better = bots.find((bot) => marketOf(bot) === data) ?? bots.find((bot) => bot.timeframe === timeframe);
  return better ? { kind: "bot", id: better.id } : source;
}

/** A finished job's report in a frame that may run nothing (the report has
 * no script), in the UI's theme. */
export function Report({ kind, job }: { kind: JobKind; job: Job }) {
  const report = useJobReport(kind, job.id, job.state === "done");
  const [theme] = useTheme();
  const frame = useRef<HTMLIFrameElement>(null);
  useEffect(() => themeReport(frame.current, theme), [theme]);
  if (job.state !== "done") return null;
  if (report.isLoading) return <Loading what="the report" />;
  if (!report.data) return <ErrorText error={report.error} />;
  // Same origin (never scripts: the report has none and may run none) so
  // that the frame can take the report's height.
  return (
    <iframe
      ref={frame}
      className="report"
      title={`Report of ${job.id}`}
      sandbox="allow-same-origin"
      srcDoc={report.data}
      onLoad={(event) => {
        const frame = event.currentTarget;
        themeReport(frame, theme);
        fitReport(frame);
      }}
    />
  );
}

/** The frame as tall as its report, no taller: a document is at least as
 * tall as its frame, so it is measured in a frame of no height. */
function fitReport(frame: HTMLIFrameElement) {
  const root = frame.contentDocument?.documentElement;
  if (!root) return;
  frame.style.height = "0px";
  frame.style.height = `${root.scrollHeight + 4}px`;
}

/** A report page takes the theme its root's `data-theme` names. */
function themeReport(frame: HTMLIFrameElement | null, theme: Theme) {
  const root = frame?.contentDocument?.documentElement;
  if (root) root.dataset.theme = theme;
}

export { percent, ratio };
