// Backtests: run one (a bot's config, or one written here with the
// plugin's parameter form, over a data set), follow its progress, open its
// report, and pick two finished runs to compare side by side.

import { useState } from "react";
import { useNavigate } from "react-router-dom";
import { allowed, useBots, useJobs, useMe, useStartBacktest } from "../api/hooks";
import { ErrorText, Loading } from "../components/States";
import { notify } from "../components/Toasts";
import { firstSource, JobInputs, JobTable, notReady, requestOf, useFollowJobs, type JobInput } from "./jobs";

export function BacktestsPage() {
  useFollowJobs();
  const me = useMe();
  const bots = useBots();
  const jobs = useJobs("backtests");
  const start = useStartBacktest();
  const navigate = useNavigate();
  const [input, setInput] = useState<JobInput | null>(null);
  const [selected, setSelected] = useState<string[]>([]);
  if (jobs.isLoading || bots.isLoading) return <Loading what="backtests" />;
  const form = input ?? { source: firstSource(bots.data), data: "", from: "", to: "" };
  const toggle = (id: string) =>
    setSelected((now) => (now.includes(id) ? now.filter((x) => x !== id) : [...now.slice(-1), id]));
  const submit = () =>
    start.mutate(requestOf(form), { onSuccess: (job) => notify("good", `backtest ${job.id} queued`) });
  return (
    <section className="research" aria-label="Backtests">
      <header className="page-head">
        <h1>Backtests</h1>
        <button
          disabled={selected.length !== 2}
          onClick={() => navigate(`/backtests/compare/${selected[0]}/${selected[1]}`)}
          title="Tick two finished backtests"
        >
          Compare the two ticked
        </button>
      </header>
      <ErrorText error={jobs.error} />
      <JobTable kind="backtests" jobs={jobs.data ?? []} selected={selected} onSelect={toggle} />
      {allowed(me.data, "POST /api/v1/backtests") && (
        <div className="job-form" aria-label="New backtest">
          <h2>New backtest</h2>
          <JobInputs value={form} onChange={(next) => { setInput(next); start.reset(); }} error={start.error} />
          <ErrorText error={start.error} />
          <button className="primary" onClick={submit} disabled={!!notReady(form) || start.isPending} title={notReady(form)}>
            {start.isPending ? "Starting…" : "Run backtest"}
          </button>
        </div>
      )}
    </section>
  );
}
