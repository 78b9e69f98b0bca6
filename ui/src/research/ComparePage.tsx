// Two finished backtests side by side: what each was made from, their
// figures in one table (the better of each marked), and both reports.

import { useParams } from "react-router-dom";
import { useJob, useJobResult, type Job } from "../api/hooks";
import { ErrorText, Loading } from "../components/States";
import { coveredText, formatParams, Report } from "./jobs";

/** Figures compared, and whether more is better (null: neither). */
const FIGURES: [string, string, boolean | null][] = [
  ["total_return_pct", "Total return %", true],
  ["cagr_pct", "CAGR %", true],
  ["sharpe", "Sharpe", true],
  ["sortino", "Sortino", true],
  ["calmar", "Calmar", true],
  ["max_drawdown_pct", "Max drawdown %", false],
  ["trades", "Trades", null],
  ["win_rate_pct", "Win rate %", true],
  ["profit_factor", "Profit factor", true],
  ["exposure_pct", "Exposure %", null],
];

function metricsOf(result: Record<string, unknown> | undefined): Record<string, unknown> {
  return (result?.metrics as Record<string, unknown> | undefined) ?? {};
}

const shown = (value: unknown) => (typeof value === "number" ? (Number.isInteger(value) ? String(value) : value.toFixed(2)) : value == null ? "–" : String(value));

const paramsOf = (job: Job) => formatParams((job.config as { strategy?: { params?: unknown } }).strategy?.params);

function useRun(id: string) {
  const job = useJob("backtests", id);
  const result = useJobResult("backtests", id, job.data?.state === "done");
  return { job: job.data, result: result.data, error: job.error ?? result.error, loading: job.isLoading || result.isLoading };
}

export function ComparePage() {
  const { a = "", b = "" } = useParams();
  const left = useRun(a);
  const right = useRun(b);
  if (left.loading || right.loading) return <Loading what="both runs" />;
  if (!left.job || !right.job) return <ErrorText error={left.error ?? right.error} />;
  const [ma, mb] = [metricsOf(left.result), metricsOf(right.result)];
  const cell = (mine: unknown, theirs: unknown, more: boolean | null) => {
    const better =
      more !== null && typeof mine === "number" && typeof theirs === "number" && mine !== theirs && mine > theirs === more;
    return <td className={`num${better ? " better" : ""}`}>{shown(mine)}</td>;
  };
  const title = (job: Job) => `${job.id}: ${job.plugin} on ${job.data}`;
  return (
    <section className="research compare" aria-label="Compare backtests">
      <header className="page-head">
        <h1>Compare</h1>
      </header>
      <table className="data compare-figures">
        <thead>
          <tr>
            <th />
            <th>{title(left.job)}</th>
            <th>{title(right.job)}</th>
          </tr>
        </thead>
        <tbody>
          <tr>
            <th>Candles</th>
            <td>{coveredText(left.job) ?? "–"}</td>
            <td>{coveredText(right.job) ?? "–"}</td>
          </tr>
          <tr>
            <th>Parameters</th>
            <td>
              <code>{paramsOf(left.job)}</code>
            </td>
            <td>
              <code>{paramsOf(right.job)}</code>
            </td>
          </tr>
          {FIGURES.map(([key, label, more]) => (
            <tr key={key}>
              <th>{label}</th>
              {cell(ma[key], mb[key], more)}
              {cell(mb[key], ma[key], more)}
            </tr>
          ))}
        </tbody>
      </table>
      <div className="side-by-side">
        <Report kind="backtests" job={left.job} />
        <Report kind="backtests" job={right.job} />
      </div>
    </section>
  );
}
