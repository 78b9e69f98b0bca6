// One backtest or optimisation: its state and progress, what it was made
// from (so it can be run again exactly), and once done its report; an
// optimisation also lists its ranked runs, any of which becomes a bot.

import { useState } from "react";
import { useNavigate, useParams } from "react-router-dom";
import { allowed, newIdempotencyKey, useCreateBot, useJob, useJobResult, useMe, useOptimizedConfig, type Job } from "../api/hooks";
import type { JobKind } from "../api/keys";
import { Empty, ErrorText, Loading } from "../components/States";
import { notify } from "../components/Toasts";
import { formatTime } from "../lib/time";
import { coveredText, formatParams, heldParams, JobState, percent, rangeText, rangesText, ratio, Report, searchText, useFollowJobs, utcDay } from "./jobs";

interface Metrics {
  total_return_pct?: number;
  sharpe?: number | null;
  sortino?: number | null;
  max_drawdown_pct?: number;
  trades?: number;
  win_rate_pct?: number | null;
  profit_factor?: number | null;
}

/** Runs the ranked table shows; the report lists every one. */
const SHOWN_RUNS = 50;

interface Trial {
  params: Record<string, unknown>;
  score: number | null;
  metrics: Metrics | null;
  error: string | null;
}

interface WindowResult {
  window: { train_from: number; test_from: number; test_to: number };
  runs: number;
  in_sample: Trial | null;
  out_of_sample: Trial | null;
}


function MadeFrom({ job }: { job: Job }) {
  // What a backtest ran on, which a range past the data's end shortens.
  const covered = coveredText(job);
  return (
    <dl className="made-from">
      <dt>Strategy</dt>
      <dd>
        {job.plugin} {job.plugin_version} <code title="plugin content hash">{job.plugin_hash.slice(0, 12)}</code>
      </dd>
      <dt>Data</dt>
      <dd>
        {job.data} <code title="data set content hash">{job.data_hash.slice(0, 12)}</code>
        {rangeText(job.from, job.to)}
        {covered && <>; ran on {covered}</>}
      </dd>
      <dt>Queued</dt>
      <dd>{formatTime(job.created)}</dd>
      <dt>Finished</dt>
      <dd>{formatTime(job.finished)}</dd>
      {job.optimization && (
        <>
          <dt>Search</dt>
          <dd>
            {job.optimization.objective}, at least {job.optimization.min_trades} trade{job.optimization.min_trades === 1 ? "" : "s"}, {searchText(job.optimization)}
          </dd>
          <dt>Ranges</dt>
          <dd>{rangesText(job.optimization)}</dd>
        </>
      )}
    </dl>
  );
}

/** Make a bot of the run ranked `rank` (of a walk-forward, rank 1 is the
 * set its last window chose): its config, under the id and name the server
 * gives it unless another id is typed. */
function MakeBot({ job, rank }: { job: Job; rank: number }) {
  const create = useCreateBot();
  const navigate = useNavigate();
  const [open, setOpen] = useState(false);
  const config = useOptimizedConfig(job.id, rank, open);
  const [typed, setTyped] = useState<string | null>(null);
  // One key per intended bot: edited, it is another one.
  const [key, setKey] = useState(newIdempotencyKey);
  if (!open) {
    return (
      <button className="small" onClick={() => setOpen(true)}>
        make a bot
      </button>
    );
  }
  if (config.isLoading) return <Loading what="the bot config" />;
  if (!config.data) {
    return (
      <span className="make-bot">
        <ErrorText error={config.error} />
        <button className="small" onClick={() => void config.refetch()}>
          try again
        </button>
      </span>
    );
  }
  const draft = config.data;
  const id = typed ?? String(draft.id);
  const submit = () =>
    create.mutate(
      { body: { ...draft, id, autostart: false }, key },
      {
        onSuccess: (bot) => {
          notify("good", `${bot.id} created (stopped)`);
          navigate(`/bots/${bot.id}`);
        },
      },
    );
  return (
    <span className="make-bot">
      <input
        aria-label="New bot id"
        value={id}
        size={Math.max(id.length, 20)}
        onChange={(e) => {
          setTyped(e.target.value);
          setKey(newIdempotencyKey());
          create.reset();
        }}
      />
      <button className="small primary" onClick={submit} disabled={create.isPending}>
        create
      </button>
      <ErrorText error={create.error} />
    </span>
  );
}

function Ranked({ job }: { job: Job }) {
  const me = useMe();
  const result = useJobResult("optimizations", job.id, job.state === "done");
  if (job.state !== "done") return null;
  if (result.isLoading) return <Loading what="the ranked runs" />;
  if (!result.data) return <ErrorText error={result.error} />;
  const canCreate = allowed(me.data, "POST /api/v1/bots");
  const windows = result.data.windows as WindowResult[] | undefined;
  if (windows) {
    return (
      <table className="data ranked" aria-label="Walk-forward windows">
        <thead>
          <tr>
            <th>Test window</th>
            <th>Best in sample</th>
            <th>In-sample return</th>
            <th>Out-of-sample return</th>
            <th>Out-of-sample Sharpe</th>
          </tr>
        </thead>
        <tbody>
          {windows.map((w) => (
            <tr key={w.window.test_from}>
              <td>
                {utcDay(w.window.test_from)} to {utcDay(w.window.test_to)}
              </td>
              <td>{formatParams(w.in_sample?.params)}</td>
              <td className="num">{percent(w.in_sample?.metrics?.total_return_pct)}</td>
              <td className="num">{percent(w.out_of_sample?.metrics?.total_return_pct)}</td>
              <td className="num">{ratio(w.out_of_sample?.metrics?.sharpe)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    );
  }
  const every = (result.data.trials as Trial[] | undefined) ?? [];
  const trials = every.slice(0, SHOWN_RUNS);
  if (trials.length === 0) return <Empty>No run was made.</Empty>;
  const held = heldParams(every.map((trial) => trial.params));
  return (
    <table className="data ranked" aria-label="Ranked runs">
      {(every.length > SHOWN_RUNS || Object.keys(held).length > 0) && (
        <caption>
          {every.length > SHOWN_RUNS && <>The first {SHOWN_RUNS} of {every.length} runs; the report below lists them all. </>}
          {Object.keys(held).length > 0 && <>Every run: {formatParams(held)}.</>}
        </caption>
      )}
      <thead>
        <tr>
          <th>Rank</th>
          <th>Parameters</th>
          <th>Score</th>
          <th>Return</th>
          <th>Sharpe</th>
          <th>Max DD</th>
          <th>Trades</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {trials.map((trial, index) => (
          <tr key={index}>
            <td className="num">{trial.score == null ? "–" : index + 1}</td>
            <td>{formatParams(trial.params, held)}</td>
            {trial.error != null ? (
              // A run the strategy refused, or that failed: why, not dashes.
              <td colSpan={5} className="warn">
                {trial.error}
              </td>
            ) : (
              <>
                <td className="num">{ratio(trial.score)}</td>
                <td className="num">{percent(trial.metrics?.total_return_pct)}</td>
                <td className="num">{ratio(trial.metrics?.sharpe)}</td>
                <td className="num">{percent(trial.metrics?.max_drawdown_pct)}</td>
                <td className="num">{trial.metrics?.trades ?? "–"}</td>
              </>
            )}
            <td>{canCreate && trial.score != null && <MakeBot job={job} rank={index + 1} />}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function JobPage({ kind }: { kind: JobKind }) {
  useFollowJobs();
  const { id = "" } = useParams();
  const job = useJob(kind, id);
  const me = useMe();
  if (job.isLoading) return <Loading what={id} />;
  if (!job.data) return <ErrorText error={job.error} />;
  const data = job.data;
  return (
    <section className="research" aria-label={`${kind === "backtests" ? "Backtest" : "Optimisation"} ${id}`}>
      <header className="page-head">
        <h1>
          {kind === "backtests" ? "Backtest" : "Optimisation"} {id}
        </h1>
        <JobState job={data} />
      </header>
      {data.error && <div className="error">{data.error}</div>}
      <MadeFrom job={data} />
      {data.state === "done" &&
        (data.optimization?.walk_forward ? (
          // A div: "make a bot" may show its refusal as a block.
          <div className="headline">
            Out of sample, compounded over the windows: return {percent(data.total_return_pct)} · deepest window drawdown{" "}
            {percent(data.max_drawdown_pct)} · {data.trades ?? 0} trades
            {data.best_params != null && (
              <>
                {" "}
                · the last window chose {formatParams(data.best_params)}{" "}
                {allowed(me.data, "POST /api/v1/bots") && <MakeBot job={data} rank={1} />}
              </>
            )}
          </div>
        ) : (
          <p className="headline">
            Return {percent(data.total_return_pct)} · Sharpe {ratio(data.sharpe)} · max drawdown {percent(data.max_drawdown_pct)} ·{" "}
            {data.trades ?? 0} trades
            {data.best_params != null && <> · best {formatParams(data.best_params)}</>}
          </p>
        ))}
      {kind === "optimizations" && <Ranked job={data} />}
      <Report kind={kind} job={data} />
    </section>
  );
}
