// A line diff of two YAML documents, as a reviewer reads it.

import { diffLines } from "diff";
import { toYaml } from "./document";

export function DiffView({ before, after, label }: { before: unknown; after: unknown; label: string }) {
  const parts = diffLines(toYaml(before), toYaml(after));
  const changed = parts.some((part) => part.added || part.removed);
  return (
    <figure className="diff" aria-label={label}>
      <figcaption>{label}</figcaption>
      {changed ? (
        <pre>
          {parts.map((part, i) => {
            const mark = part.added ? "+" : part.removed ? "-" : " ";
            const kind = part.added ? "added" : part.removed ? "removed" : "same";
            const lines = part.value.replace(/\n$/, "").split("\n");
            return (
              <span key={i} className={`diff-${kind}`}>
                {lines.map((line) => `${mark} ${line}`).join("\n")}
                {"\n"}
              </span>
            );
          })}
        </pre>
      ) : (
        <p className="muted">No differences.</p>
      )}
    </figure>
  );
}
