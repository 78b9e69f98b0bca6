// A plugin's parameter schema as a person reads it: one row per
// parameter, with what it takes, its default and its description.

import { labelOf, type JsonSchema } from "../config/formSchema";

export interface ParameterRow {
  name: string;
  label: string;
  takes: string;
  default: string;
  description: string;
}

/** The schema a `$ref` inside `root` names ("#/$defs/Seed"). */
function resolve(schema: JsonSchema, root: JsonSchema): JsonSchema {
  const ref = schema.$ref;
  if (typeof ref !== "string" || !ref.startsWith("#/")) return schema;
  let node: unknown = root;
  for (const part of ref.slice(2).split("/")) node = (node as JsonSchema | undefined)?.[part];
  return { ...((node as JsonSchema) ?? {}), ...schema };
}

/** What a parameter takes: "integer, 1 to 10000", "one of sma, first_value". */
export function takes(schema: JsonSchema, root: JsonSchema): string {
  const resolved = resolve(schema, root);
  if (Array.isArray(resolved.enum)) return `one of ${resolved.enum.join(", ")}`;
  const variants = (resolved.oneOf ?? resolved.anyOf) as JsonSchema[] | undefined;
  if (variants) {
    const names = variants.map((variant) => {
      const one = resolve(variant, root);
      const required = one.required as string[] | undefined;
      return "const" in one ? String(one.const) : (required?.[0] ?? takes(one, root));
    });
    return `one of ${names.join(", ")}`;
  }
  const type = String(resolved.type ?? "any");
  const low = resolved.minimum ?? resolved.exclusiveMinimum;
  const high = resolved.maximum ?? resolved.exclusiveMaximum;
  if (low !== undefined && high !== undefined) return `${type}, ${low} to ${high}`;
  if (low !== undefined) return `${type}, from ${low}`;
  if (high !== undefined) return `${type}, up to ${high}`;
  return type;
}

/** One row per parameter of `schema`, in the schema's order. */
export function parameterRows(schema: JsonSchema | null | undefined): ParameterRow[] {
  const properties = (schema?.properties ?? {}) as Record<string, JsonSchema>;
  return Object.entries(properties).map(([name, field]) => {
    const resolved = resolve(field, schema ?? {});
    return {
      name,
      label: labelOf(name),
      takes: takes(field, schema ?? {}),
      default: resolved.default === undefined ? "" : JSON.stringify(resolved.default),
      description: String(field.description ?? resolved.description ?? ""),
    };
  });
}
