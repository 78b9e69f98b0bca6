// The strategies the host can run: each plugin with its version, warm-up,
// parameters (and their schema) and the bots that use it; upload a `.wasm` (the API's
// errors shown as it gives them) and delete one no bot uses.

import { Fragment, useRef, useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { uploadPlugin } from "../api/client";
import { allowed, useDeleteStrategy, useMe, useStrategies } from "../api/hooks";
import { keys } from "../api/keys";
import { Confirm } from "../components/Confirm";
import { Empty, ErrorText, Loading } from "../components/States";
import { Inline } from "../components/Inline";
import { notify } from "../components/Toasts";
import type { JsonSchema } from "../config/formSchema";
import { parameterRows } from "./parameters";

function Upload() {
  const client = useQueryClient();
  const input = useRef<HTMLInputElement>(null);
  const upload = useMutation({
    mutationFn: async (file: File) => uploadPlugin(await file.arrayBuffer()),
    onSuccess: (strategy) => {
      notify("good", `${strategy.name} ${strategy.version} uploaded`);
      void client.invalidateQueries({ queryKey: keys.strategies });
      if (input.current) input.current.value = "";
    },
  });
  return (
    <div className="upload">
      <label>
        Upload a strategy (.wasm){" "}
        <input
          ref={input}
          type="file"
          accept=".wasm,application/wasm"
          aria-label="Strategy file"
          disabled={upload.isPending}
          onChange={(event) => {
            const file = event.target.files?.[0];
            if (file) upload.mutate(file);
          }}
        />
      </label>
      {upload.isPending && <span className="muted">Compiling and checking…</span>}
      <ErrorText error={upload.error} />
    </div>
  );
}

export function StrategiesPage() {
  const strategies = useStrategies();
  const me = useMe();
  const remove = useDeleteStrategy();
  const [open, setOpen] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const canUpload = allowed(me.data, "POST /api/v1/strategies");
  const canDelete = allowed(me.data, "DELETE /api/v1/strategies/{name}");

  if (strategies.isLoading) return <Loading what="strategies" />;
  if (!strategies.data) return <ErrorText error={strategies.error} />;
  const items = strategies.data.items;

  return (
    <section className="strategies" aria-label="Strategies">
      <header className="page-head">
        <h1>Strategies</h1>
      </header>
      {canUpload && <Upload />}
      <ErrorText error={remove.error} />
      {items.length === 0 ? (
        <Empty>No strategies yet{canUpload ? ": upload a .wasm built with the SDK." : "."}</Empty>
      ) : (
        <table className="data">
          <thead>
            <tr>
              <th>Name</th>
              <th>Version</th>
              <th>Description</th>
              <th>Warm-up</th>
              <th>Bots</th>
              <th>Hash</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {items.map((s) => {
              const id = `${s.name}@${s.version}`;
              return (
                <Fragment key={id}>
                  <tr>
                    <td>
                      <strong>{s.name}</strong>
                    </td>
                    <td>{s.version}</td>
                    <td>{s.description}</td>
                    <td>{s.warmup} candles</td>
                    <td>
                      {s.bots.length === 0
                        ? "—"
                        : s.bots.map((bot) => (
                            <Link key={bot} to={`/bots/${bot}`} className="chip">
                              {bot}
                            </Link>
                          ))}
                    </td>
                    <td>
                      <code title={s.content_hash}>{s.content_hash.slice(0, 12)}</code>
                    </td>
                    <td className="row-actions">
                      <button className="small" aria-expanded={open === id} onClick={() => setOpen(open === id ? null : id)}>
                        Parameters
                      </button>
                      {canDelete && (
                        <button className="small danger" onClick={() => setDeleting(s.name)}>
                          Delete
                        </button>
                      )}
                    </td>
                  </tr>
                  {open === id && (
                    <tr className="detail">
                      <td colSpan={7}>
                        <table aria-label={`Parameters of ${s.name}`}>
                          <thead>
                            <tr>
                              <th>Parameter</th>
                              <th>Takes</th>
                              <th>Default</th>
                              <th>Description</th>
                            </tr>
                          </thead>
                          <tbody>
                            {parameterRows(s.params_schema as JsonSchema).map((row) => (
                              <tr key={row.name}>
                                <td title={row.name}>{row.label}</td>
                                <td>{row.takes}</td>
                                <td>
                                  <code>{row.default}</code>
                                </td>
                                <td>
                                  <Inline text={row.description} />
                                </td>
                              </tr>
                            ))}
                          </tbody>
                        </table>
                        <details>
                          <summary>JSON Schema</summary>
                          <pre aria-label={`Parameter schema of ${s.name}`}>{JSON.stringify(s.params_schema, null, 2)}</pre>
                        </details>
                      </td>
                    </tr>
                  )}
                </Fragment>
              );
            })}
          </tbody>
        </table>
      )}
      {deleting && (
        <Confirm
          title={`Delete ${deleting}?`}
          confirmLabel="Delete"
          onCancel={() => setDeleting(null)}
          onConfirm={() => {
            const name = deleting;
            setDeleting(null);
            remove.mutate(name, { onSuccess: () => notify("good", `${name} deleted`) });
          }}
        >
          <p>The plugin file is removed; a strategy that bots still use cannot be deleted.</p>
        </Confirm>
      )}
    </section>
  );
}
