// A bot's config: edit it (form or YAML), check it with the server, review
// the diff against the config in force, apply it with If-Match; and its
// versions, with a diff between any two and a rollback to any of them.

import { useEffect, useRef, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { ApiProblem } from "../api/client";
import { allowed, useApplyConfig, useBotConfig, useMe, useRollback, useValidateConfig, useVersions } from "../api/hooks";
import { useFollow } from "../api/streamContext";
import { Confirm } from "../components/Confirm";
import { Empty, ErrorText, Loading } from "../components/States";
import { notify } from "../components/Toasts";
import { canonical, changedCopy, ConfigEditor, useConfigSchema } from "./ConfigEditor";
import { DiffView } from "./DiffView";
import type { Doc } from "./document";
import type { JsonSchema } from "./formSchema";
import { formatTime } from "../lib/time";

export function ConfigPage() {
  const { id = "" } = useParams();
  useFollow(`config:${id}`, { channels: ["bots"], bots: [id] });
  const me = useMe();
  const running = useBotConfig(id);
  const validate = useValidateConfig(id);
  const apply = useApplyConfig(id);
  const [draft, setDraft] = useState<Doc | null>(null);
  // The version the draft started from: applied with If-Match on it, so a
  // change made elsewhere meanwhile is never overwritten.
  const [base, setBase] = useState<{ config: Doc; etag: string | null } | null>(null);
  const [reviewing, setReviewing] = useState(false);
  const [readable, setReadable] = useState(true);
  const canApply = allowed(me.data, "PUT /api/v1/bots/{id}/config");
  const { schema } = useConfigSchema(draft ?? {});

  const untouched =
    draft === null || base === null || JSON.stringify(canonical(schema, draft)) === JSON.stringify(canonical(schema, base.config));
  const untouchedNow = useRef(untouched);
  untouchedNow.current = untouched;
  // Follow the config in force while the draft is untouched.
  useEffect(() => {
    if (running.data && untouchedNow.current) {
      setBase(running.data);
      setDraft(structuredClone(running.data.config));
    }
  }, [running.data]);

  if (running.isLoading || (running.data && !draft)) return <Loading what={`the config of ${id}`} />;
  if (!running.data || !draft || !base) return <ErrorText error={running.error} />;

  const before = canonical(schema, running.data.config);
  const after = canonical(schema, draft);
  const changed = JSON.stringify(before) !== JSON.stringify(after);
  // Applying the draft would be refused: the config in force moved on since
  // it started, as the page has seen (`behind`) or the server said (412).
  const behind = base.etag !== running.data.etag;
  const stale = behind || (apply.error instanceof ApiProblem && apply.error.status === 412);
  const problem = (apply.error ?? validate.error) instanceof ApiProblem ? ((apply.error ?? validate.error) as ApiProblem) : null;
  const edit = (next: Doc) => {
    setDraft(next);
    setReviewing(false);
    validate.reset();
    apply.reset();
  };
  const restart = (from: { config: Doc; etag: string | null }) => {
    setBase(from);
    edit(structuredClone(from.config));
  };
  // What is sent: the config the draft started from plus what was changed.
  const sent = changedCopy(schema, base.config, draft);
  const review = () =>
    validate.mutate(sent, {
      onSuccess: () => setReviewing(true),
    });
  const commit = () =>
    apply.mutate(
      { config: sent, etag: base.etag },
      {
        onSuccess: (applied) => {
          notify("good", `${id}: config applied as version ${applied.version}`);
          restart({ config: applied.config as Doc, etag: `"v${applied.version}"` });
        },
      },
    );

  return (
    <section className="config-page" aria-label={`Config of ${id}`}>
      <header className="page-head">
        <h1>
          <Link to={`/bots/${id}`}>{id}</Link> · config{" "}
          <span className="muted">in force: {running.data.etag?.replaceAll('"', "") ?? "?"}</span>
        </h1>
        {canApply && (
          <div className="actions">
            <button onClick={() => restart(running.data)}>Discard changes</button>
            <button
              className="primary"
              onClick={review}
              disabled={validate.isPending || !readable}
              title={readable ? undefined : "the YAML does not read as a document"}
            >
              {validate.isPending ? "Checking…" : "Review changes"}
            </button>
          </div>
        )}
      </header>
      {!canApply && me.data && (
        <p className="muted" role="note">
          Read-only: a {me.data.role} sees the config; changing it needs the operator role.
        </p>
      )}
      {behind && (
        <p className="warn" role="alert">
          The config in force changed to {running.data.etag?.replaceAll('"', "")} since this draft started from{" "}
          {base.etag?.replaceAll('"', "")}: applying it will be refused. Discard changes to start from the new one.
        </p>
      )}
      {problem && <ErrorText error={problem} />}
      {apply.error && !(apply.error instanceof ApiProblem) && <ErrorText error={apply.error} />}
      {reviewing && (
        <div className="review">
          <DiffView before={before} after={after} label="Changes against the config in force" />
          {!changed ? (
            <p className="muted">Nothing to apply.</p>
          ) : stale ? (
            <p className="muted">Not applicable to the config in force: discard changes to start from it.</p>
          ) : (
            <>
              <p className="good">The server accepts this config.</p>
              <button className="primary" onClick={commit} disabled={apply.isPending}>
                {apply.isPending ? "Applying…" : "Apply"}
              </button>
            </>
          )}
        </div>
      )}
      <div className="config-layout">
        <ConfigEditor value={draft} onChange={edit} onReadable={setReadable} problem={problem} readOnly={!canApply} fixedId />
        <Versions
          id={id}
          etag={running.data.etag}
          canRollback={allowed(me.data, "POST /api/v1/bots/{id}/config/rollback")}
          onApplied={(config, version) => restart({ config, etag: `"v${version}"` })}
          schema={schema}
        />
      </div>
    </section>
  );
}

function Versions({
  id,
  etag,
  canRollback,
  onApplied,
  schema,
}: {
  id: string;
  etag: string | null;
  canRollback: boolean;
  onApplied: (config: Doc, version: number) => void;
  schema: JsonSchema | null;
}) {
  const versions = useVersions(id);
  const rollback = useRollback(id);
  const [picked, setPicked] = useState<number[]>([]);
  const [confirming, setConfirming] = useState<number | null>(null);

  if (versions.isLoading) return <Loading what="versions" />;
  if (!versions.data) return <ErrorText error={versions.error} />;
  const items = versions.data.items;
  if (items.length === 0) return <Empty>No versions yet.</Empty>;
  const current = items[0].version;
  const pick = (version: number) =>
    setPicked((now) => (now.includes(version) ? now.filter((v) => v !== version) : [...now, version].slice(-2)));
  const [a, b] = [...picked].sort((x, y) => x - y).map((v) => items.find((item) => item.version === v));

  return (
    <aside className="versions" aria-label="Versions">
      <h2>Versions</h2>
      <p className="muted">Tick two to compare them.</p>
      <ol>
        {items.map((item) => (
          <li key={item.version}>
            <label>
              <input
                type="checkbox"
                checked={picked.includes(item.version)}
                onChange={() => pick(item.version)}
                aria-label={`compare version ${item.version}`}
              />
              <strong>v{item.version}</strong> {formatTime(item.created_at)} · {item.actor}
              {item.version === current && <span className="badge">in force</span>}
            </label>
            {canRollback && item.version !== current && (
              <button onClick={() => setConfirming(item.version)}>Roll back to v{item.version}</button>
            )}
          </li>
        ))}
      </ol>
      {a && b && (
        <DiffView
          before={canonical(schema, a.config as Doc)}
          after={canonical(schema, b.config as Doc)}
          label={`v${a.version} → v${b.version}`}
        />
      )}
      <ErrorText error={rollback.error} />
      {confirming !== null && (
        <Confirm
          title={`Roll ${id} back to v${confirming}?`}
          confirmLabel="Roll back"
          danger={false}
          onCancel={() => setConfirming(null)}
          onConfirm={() => {
            const version = confirming;
            setConfirming(null);
            rollback.mutate(
              { version, etag },
              {
                onSuccess: (applied) => {
                  notify("good", `${id}: v${version} back in force as v${applied.version}`);
                  onApplied(applied.config as Doc, applied.version);
                },
              },
            );
          }}
        >
          <p>The config of v{confirming} becomes a new version, hot-swapped like any change.</p>
        </Confirm>
      )}
    </aside>
  );
}
