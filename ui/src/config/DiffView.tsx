// A line diff of two YAML documents, as a reviewer reads it: the changed
// lines with a few unchanged ones around them, longer unchanged runs folded.

import { diffLines } from "diff";
import { toYaml } from "./document";

/** Unchanged lines shown on each side of a change. */
const CONTEXT = 3;

export type DiffRow = { kind: "added" | "removed" | "same"; text: string } | { kind: "folded"; count: number };

/** The rows of a diff of two YAML texts; empty when nothing changed. */
export function diffRows(before: string, after: string, context = CONTEXT): DiffRow[] {
  const lines: { kind: "added" | "removed" | "same"; text: string }[] = [];
  for (const part of diffLines(before, after)) {
    const kind = part.added ? "added" : part.removed ? "removed" : "same";
    for (const text of part.value.replace(/\n$/, "").split("\n")) lines.push({ kind, text });
  }
  if (lines.every((line) => line.kind === "same")) return [];
  // Keep an unchanged line only within `context` lines of a change.
  const near = lines.map(() => false);
  lines.forEach((line, index) => {
    if (line.kind === "same") return;
    for (let at = Math.max(0, index - context); at <= Math.min(lines.length - 1, index + context); at++) near[at] = true;
  });
  const rows: DiffRow[] = [];
  lines.forEach((line, index) => {
    if (near[index]) {
      rows.push(line);
      return;
    }
    const last = rows.at(-1);
    if (last?.kind === "folded") last.count += 1;
    else rows.push({ kind: "folded", count: 1 });
  });
  return rows;
}

const MARK = { added: "+", removed: "-", same: " " } as const;

export function DiffView({ before, after, label }: { before: unknown; after: unknown; label: string }) {
  const rows = diffRows(toYaml(before), toYaml(after));
  return (
    <figure className="diff" aria-label={label}>
      <figcaption>{label}</figcaption>
      {rows.length > 0 ? (
        <pre>
          {rows.map((row, i) =>
            row.kind === "folded" ? (
              <span key={i} className="diff-folded">
                {`  ⋯ ${row.count} unchanged line${row.count === 1 ? "" : "s"}\n`}
              </span>
            ) : (
              <span key={i} className={`diff-${row.kind}`}>
                {`${MARK[row.kind]} ${row.text}\n`}
              </span>
            ),
          )}
        </pre>
      ) : (
        <p className="muted">No differences.</p>
      )}
    </figure>
  );
}
