// Loading, empty and error states, the same everywhere.

import type { ReactNode } from "react";
import { ApiProblem, type Problem } from "../api/client";
import { Inline } from "./Inline";

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

/** The part of a problem's detail its list of errors does not repeat: the
 * detail "not hot-swappable while the bot runs: /capital: can only change
 * while the bot is stopped" leads with "not hot-swappable while the bot
 * runs"; a detail that only joins the errors leads with nothing. */
export function lead(problem: Problem): string {
  const detail = problem.detail;
  const first = problem.errors?.[0];
  if (!first) return detail;
  const at = detail.indexOf(first.pointer ? `${first.pointer}: ` : first.message);
  return (at < 0 ? detail : detail.slice(0, at)).replace(/[\s:;]+$/, "");
}

/** A problem's heading: what its detail leads with ("The order was
 * refused"), or, when the detail only joins its errors, its kind's title
 * ("Not accepted"). Never both: they say the same thing. */
export function heading(problem: Problem): string {
  const said = lead(problem);
  return said ? said.charAt(0).toUpperCase() + said.slice(1) : problem.title;
}

export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  if (error instanceof ApiProblem) {
    return (
      <div className="error" role="alert">
        <strong>
          <Inline text={heading(error.problem)} />
        </strong>
        {error.problem.errors && error.problem.errors.length > 0 && (
          <ul>
            {error.problem.errors.map((e, i) => (
              <li key={i}>
                {/* An error of the whole document names no place. */}
                {e.pointer && <code>{e.pointer}</code>} <Inline text={e.message} />
              </li>
            ))}
          </ul>
        )}
      </div>
    );
  }
  return (
    <div className="error" role="alert">
      <Inline text={error instanceof Error ? error.message : String(error)} />
    </div>
  );
}
