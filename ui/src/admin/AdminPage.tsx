// Administration: API tokens (a new one is shown once; revoke), the audit
// log with filters, the host (version, uptime, CPU, memory, store size)
// and the health of this browser's live stream.

import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { useAudit, useCreateToken, useRevokeToken, useSystem, useTokens, type Me } from "../api/hooks";
import { useStreamHealth } from "../api/streamContext";
import { Confirm } from "../components/Confirm";
import { Empty, ErrorText, Loading } from "../components/States";
import { notify } from "../components/Toasts";
import { formatBytes } from "../lib/bytes";
import { formatTime } from "../lib/time";

const ROLES = ["viewer", "operator", "admin"] as const;

function duration(secs: number): string {
  const d = Math.floor(secs / 86_400);
  const h = Math.floor((secs % 86_400) / 3_600);
  const m = Math.floor((secs % 3_600) / 60);
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : `${m}m ${secs % 60}s`;
}

function Tokens({ me }: { me: Me }) {
  const tokens = useTokens(true);
  const create = useCreateToken();
  const revoke = useRevokeToken();
  const [name, setName] = useState("");
  const [role, setRole] = useState<(typeof ROLES)[number]>("viewer");
  const [revoking, setRevoking] = useState<{ id: string; name: string } | null>(null);

  return (
    <section aria-label="Tokens" className="panel">
      <h2>Tokens</h2>
      <form
        className="inline-form"
        onSubmit={(event) => {
          event.preventDefault();
          create.mutate({ name, role }, { onSuccess: () => setName("") });
        }}
      >
        <input aria-label="Token name" placeholder="who uses it" value={name} onChange={(e) => setName(e.target.value)} />
        <select aria-label="Token role" value={role} onChange={(e) => setRole(e.target.value as typeof role)}>
          {ROLES.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
        <button className="primary" disabled={create.isPending}>
          Create token
        </button>
      </form>
      <ErrorText error={create.error ?? revoke.error} />
      {create.data && (
        <div className="secret" role="alert" aria-label="New token">
          <p>
            The token of <strong>{create.data.name}</strong> ({create.data.role}). Copy it now: it is never shown again.
          </p>
          <code>{create.data.token}</code>{" "}
          <button className="small" onClick={() => void navigator.clipboard?.writeText(create.data.token)}>
            Copy
          </button>{" "}
          <button className="small" onClick={() => create.reset()}>
            Done
          </button>
        </div>
      )}
      {tokens.isLoading ? (
        <Loading what="tokens" />
      ) : (
        <table className="data">
          <thead>
            <tr>
              <th>Name</th>
              <th>Role</th>
              <th>Id</th>
              <th>Created</th>
              <th>Revoked</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {(tokens.data?.items ?? []).map((t) => (
              <tr key={t.id} className={t.revoked_at ? "revoked" : ""}>
                <td className="wraps">{t.name}</td>
                <td>{t.role}</td>
                <td>
                  <code>{t.id}</code>
                </td>
                <td className="when">{formatTime(t.created_at)}</td>
                <td className="when">{formatTime(t.revoked_at)}</td>
                <td>
                  {!t.revoked_at && t.id !== me.token_id && (
                    <button className="small danger" onClick={() => setRevoking({ id: t.id, name: t.name })}>
                      Revoke
                    </button>
                  )}
                  {t.id === me.token_id && <span className="muted">this session</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {revoking && (
        <Confirm
          title={`Revoke ${revoking.name}?`}
          confirmLabel="Revoke"
          onCancel={() => setRevoking(null)}
          onConfirm={() => {
            const target = revoking;
            setRevoking(null);
            revoke.mutate(target.id, { onSuccess: () => notify("good", `${target.name} revoked`) });
          }}
        >
          <p>Every request and open stream with this token is refused from now on.</p>
        </Confirm>
      )}
    </section>
  );
}

const NO_FILTERS = { actor: "", action: "", from: "", to: "" };

function Audit() {
  const [draft, setDraft] = useState(NO_FILTERS);
  const [filters, setFilters] = useState(NO_FILTERS);
  const query: Record<string, string> = {};
  for (const [key, value] of Object.entries(filters)) {
    if (!value) continue;
    query[key] = key === "from" || key === "to" ? new Date(value).toISOString() : value;
  }
  const audit = useAudit(query, true);
  return (
    <section aria-label="Audit log" className="panel">
      <h2>Audit log</h2>
      <form
        className="inline-form"
        onSubmit={(event) => {
          event.preventDefault();
          setFilters(draft);
        }}
      >
        <input aria-label="Actor" placeholder="actor" value={draft.actor} onChange={(e) => setDraft({ ...draft, actor: e.target.value })} />
        <input
          aria-label="Action"
          placeholder="action (PUT /api/v1/bots/{id}/config)"
          value={draft.action}
          onChange={(e) => setDraft({ ...draft, action: e.target.value })}
        />
        <label>
          from <input type="datetime-local" aria-label="From" value={draft.from} onChange={(e) => setDraft({ ...draft, from: e.target.value })} />
        </label>
        <label>
          to <input type="datetime-local" aria-label="To" value={draft.to} onChange={(e) => setDraft({ ...draft, to: e.target.value })} />
        </label>
        <button>Filter</button>
      </form>
      <ErrorText error={audit.error} />
      {audit.isLoading ? (
        <Loading what="the audit log" />
      ) : (audit.data?.items.length ?? 0) === 0 ? (
        <Empty>No audit entries match.</Empty>
      ) : (
        <div className="scroll">
          <table className="data">
            <thead>
              <tr>
                <th>When</th>
                <th>Actor</th>
                <th>Role</th>
                <th>Action</th>
                <th>Target</th>
                <th>Status</th>
                <th>From</th>
                <th>Detail</th>
              </tr>
            </thead>
            <tbody>
              {audit.data?.items.map((row) => (
                <tr key={row.id} className={row.status >= 400 ? "refused" : ""}>
                  <td className="when">{formatTime(row.at)}</td>
                  <td className="wraps">{row.actor}</td>
                  <td>{row.role}</td>
                  <td>
                    <code>{row.action}</code>
                  </td>
                  <td>{row.target}</td>
                  <td>{row.status}</td>
                  <td>{row.remote}</td>
                  <td className="wraps">{row.detail}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function System() {
  const system = useSystem();
  const health = useQuery({
    queryKey: ["health"],
    queryFn: () => unwrap(api.GET("/api/v1/health")),
    refetchInterval: 5_000,
  });
  const stream = useStreamHealth();
  const s = system.data;
  const lag = Math.max(0, stream.serverSeq - stream.lastSeq);
  return (
    <section aria-label="System" className="panel">
      <h2>System</h2>
      <ErrorText error={system.error} />
      {s && (
        <dl className="facts">
          <dt>Version</dt>
          <dd>
            stratbox {s.version} (API revision {s.api_revision})
          </dd>
          <dt>Health</dt>
          <dd>
            {health.data?.status ?? "…"}
            {health.data?.checks
              .filter((c) => c.status !== "ok")
              .map((c) => (
                <span key={c.name} className="warn">
                  {" "}
                  {c.name}: {c.detail}
                </span>
              ))}
          </dd>
          <dt>Uptime</dt>
          <dd>
            {duration(s.uptime_secs)} (since {formatTime(s.started_at)} UTC)
          </dd>
          <dt>CPU</dt>
          <dd>{s.cpu_percent.toFixed(1)} % of a core</dd>
          <dt>Memory</dt>
          <dd>{formatBytes(s.memory_bytes)} resident</dd>
          <dt>Threads</dt>
          <dd>{s.threads ?? "—"}</dd>
          <dt>Store</dt>
          <dd>
            {formatBytes(s.store_bytes)} in {s.data_dir}
          </dd>
          <dt>Disk</dt>
          <dd>
            {formatBytes(s.disk_available_bytes)} free of {formatBytes(s.disk_total_bytes)}
          </dd>
        </dl>
      )}
      <h3>Live stream (this browser)</h3>
      <dl className="facts" aria-label="Stream health">
        <dt>Connection</dt>
        <dd>{stream.connected ? "connected" : "reconnecting"}</dd>
        <dt>Reconnects</dt>
        <dd>{stream.reconnects}</dd>
        <dt>Last event</dt>
        <dd>#{stream.lastSeq}</dd>
        <dt>Lag</dt>
        <dd>{lag} events behind the server's last heartbeat</dd>
        <dt>Received</dt>
        <dd>{stream.received} events since this page opened</dd>
        <dt>Last message</dt>
        <dd>{stream.lastMessageAt ? `${Math.round((Date.now() - stream.lastMessageAt) / 1000)} s ago` : "—"}</dd>
      </dl>
    </section>
  );
}

export function AdminPage({ me }: { me: Me }) {
  return (
    <div className="admin">
      <System />
      <Tokens me={me} />
      <Audit />
    </div>
  );
}
