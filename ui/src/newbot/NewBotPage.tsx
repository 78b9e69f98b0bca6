// A new bot: from a preset with overrides (the preset's config in the
// editor; what was changed is sent as an RFC 7396 merge patch), or from
// scratch with the same editor. The server validates; its errors show at
// their fields.

import { useMemo, useState } from "react";
import { useNavigate } from "react-router-dom";
import { ApiProblem } from "../api/client";
import { newIdempotencyKey, useCreateBot, usePresets } from "../api/hooks";
import { ErrorText, Loading } from "../components/States";
import { notify } from "../components/Toasts";
import { canonical, changesFrom, ConfigEditor, useConfigSchema } from "../config/ConfigEditor";
import { DiffView } from "../config/DiffView";
import { overridePointerInDraft, type Doc } from "../config/document";

type Source = { kind: "preset"; name: string } | { kind: "scratch" };

/** Where a config from scratch starts: the fields with no default. */
const BLANK: Doc = {
  id: "",
  name: "",
  strategy: { plugin: "", params: {} },
  market: { symbol: "BTCUSDT", timeframe: "1m" },
  capital: { quote: "USDT", initial: "10000" },
  mode: "paper",
};

/** The server's problem with its pointers on the editor's draft (it names
 * the body sent, whose overrides are a patch of the draft). */
function inDraft(problem: ApiProblem): ApiProblem {
  const errors = problem.problem.errors?.map((e) => ({ ...e, pointer: overridePointerInDraft(e.pointer) }));
  return new ApiProblem(problem.status, { ...problem.problem, errors });
}

export function NewBotPage() {
  const presets = usePresets();
  const create = useCreateBot();
  const navigate = useNavigate();
  const [source, setSource] = useState<Source | null>(null);
  const [draft, setDraft] = useState<Doc>(BLANK);
  const [readable, setReadable] = useState(true);
  // One key per intended creation: a retry of the same draft cannot make two bots.
  const [key, setKey] = useState(newIdempotencyKey);

  const items = useMemo(() => presets.data?.items ?? [], [presets.data]);
  const preset = source?.kind === "preset" ? items.find((p) => p.name === source.name) : undefined;
  const base = preset ? ({ ...(preset.config as Doc), id: "", name: "" } as Doc) : null;
  const { schema } = useConfigSchema(draft);

  if (presets.isLoading) return <Loading what="presets" />;

  const choose = (next: Source) => {
    setSource(next);
    create.reset();
    setKey(newIdempotencyKey());
    if (next.kind === "preset") {
      const chosen = items.find((p) => p.name === next.name);
      setDraft({ ...((chosen?.config as Doc) ?? {}), id: "", name: "" });
    } else {
      setDraft(BLANK);
    }
  };
  const edit = (next: Doc) => {
    setDraft(next);
    create.reset();
    setKey(newIdempotencyKey());
  };
  const submit = () => {
    // A preset's overrides are what was changed, not the defaults the form shows.
    const body = preset ? { preset: preset.name, overrides: changesFrom(schema, preset.config as Doc, draft) } : draft;
    create.mutate(
      { body, key },
      {
        onSuccess: (bot) => {
          notify("good", `${bot.id} created`);
          navigate(`/bots/${bot.id}`);
        },
      },
    );
  };
  const problem = create.error instanceof ApiProblem ? inDraft(create.error) : null;

  return (
    <section className="new-bot" aria-label="New bot">
      <header className="page-head">
        <h1>New bot</h1>
      </header>
      <div className="choices" role="radiogroup" aria-label="Start from">
        {items.map((p) => (
          <button
            key={p.name}
            role="radio"
            aria-checked={source?.kind === "preset" && source.name === p.name}
            onClick={() => choose({ kind: "preset", name: p.name })}
          >
            Preset <strong>{p.name}</strong>
          </button>
        ))}
        <button role="radio" aria-checked={source?.kind === "scratch"} onClick={() => choose({ kind: "scratch" })}>
          From scratch
        </button>
      </div>
      <ErrorText error={presets.error} />
      {source && (
        <>
          <ConfigEditor value={draft} onChange={edit} onReadable={setReadable} problem={problem} />
          {base && (
            <DiffView
              before={canonical(schema, base)}
              after={canonical(schema, draft)}
              label={`Overrides of ${preset?.name}`}
            />
          )}
          <ErrorText error={create.error} />
          <div className="actions">
            <button
              className="primary"
              onClick={submit}
              disabled={create.isPending || !readable}
              title={readable ? undefined : "the YAML does not read as a document"}
            >
              {create.isPending ? "Creating…" : "Create bot"}
            </button>
          </div>
        </>
      )}
    </section>
  );
}
