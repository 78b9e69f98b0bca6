// Loading, empty and error states, the same everywhere.

import type { ReactNode } from "react";
import { ApiProblem } from "../api/client";

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  if (error instanceof ApiProblem) {
    return (
      <div className="error" role="alert">
        <strong>{error.problem.title}</strong>: {error.problem.detail}
        {error.problem.errors && error.problem.errors.length > 0 && (
          <ul>
            {error.problem.errors.map((e, i) => (
              <li key={i}>
                <code>{e.pointer || "/"}</code> {e.message}
              </li>
            ))}
          </ul>
        )}
      </div>
    );
  }
  return (
    <div className="error" role="alert">
      {error instanceof Error ? error.message : String(error)}
    </div>
  );
}
