// Sign in with an API token. The token is checked against the server before
// it is kept (in session storage, for this tab only).

import { useState } from "react";
import { session } from "../api/session";

export function LoginPage({ reason }: { reason?: string }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [checking, setChecking] = useState(false);

  const submit = async () => {
    setChecking(true);
    setError(null);
    try {
      const response = await fetch("/api/v1/me", { headers: { Authorization: `Bearer ${token.trim()}` } });
      if (response.ok) {
        session.signIn(token);
        return;
      }
      const problem = (await response.json().catch(() => null)) as { detail?: string } | null;
      setError(problem?.detail ?? `The server answered ${response.status}.`);
    } catch {
      setError("The server cannot be reached.");
    } finally {
      setChecking(false);
    }
  };

  return (
    <main className="login">
      <form
        className="login-card"
        onSubmit={(event) => {
          event.preventDefault();
          void submit();
        }}
      >
        <h1>stratbox</h1>
        <p className="muted">Sign in with an API token (<code>stratbox token create</code>, or the one <code>make run</code> printed).</p>
        {reason && <p className="warn">{reason}</p>}
        <label>
          Token
          <input
            type="password"
            autoComplete="off"
            autoFocus
            aria-label="API token"
            value={token}
            onChange={(e) => setToken(e.target.value)}
          />
        </label>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button className="primary" disabled={checking || token.trim().length === 0}>
          {checking ? "Checking…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
