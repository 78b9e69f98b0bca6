// A config document as the editors handle it: YAML text both ways, and the
// RFC 7396 merge patch that turns one document into another (how a new
// bot's overrides of a preset are sent).

import { parse, stringify } from "yaml";

export type Doc = Record<string, unknown>;

export function toYaml(doc: unknown): string {
  return stringify(doc, { lineWidth: 0 });
}

/** The document in `text`, or the parser's message. */
export function fromYaml(text: string): { doc: Doc } | { error: string } {
  try {
    const doc = parse(text) as unknown;
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) return { error: "the document must be a mapping" };
    return { doc: doc as Doc };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

function isObject(value: unknown): value is Doc {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** The merge patch that turns `from` into `to` (RFC 7396): changed values,
 * `null` for removed keys, arrays replaced whole. */
export function mergePatch(from: Doc, to: Doc): Doc {
  const patch: Doc = {};
  for (const key of Object.keys(from)) {
    if (!(key in to)) patch[key] = null;
  }
  for (const [key, value] of Object.entries(to)) {
    const before = from[key];
    if (isObject(before) && isObject(value)) {
      const inner = mergePatch(before, value);
      if (Object.keys(inner).length > 0) patch[key] = inner;
    } else if (JSON.stringify(before) !== JSON.stringify(value)) {
      patch[key] = value;
    }
  }
  return patch;
}

/** Where a field error of a create-from-preset body lies in the editor's
 * whole draft: the body's `/overrides/x` is the draft's `/x`. Others (such
 * as `/preset`, whose message names the preset's field) stay. */
export function overridePointerInDraft(pointer: string): string {
  return pointer.startsWith("/overrides/") ? pointer.slice("/overrides".length) : pointer;
}

/** `patch` applied to `target` (RFC 7396), for tests and previews. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Doc = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = applyMergePatch(out[key], value);
  }
  return out;
}

/** `value` with every mapping's keys in order: documents compare and diff
 * by content, not by the order their keys were written in. */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isObject(value)) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortKeys(value[key])]),
  );
}
