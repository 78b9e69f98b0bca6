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

/** The names of a choice's branches, the branches of a nested choice (an
 *  optional choice: the choice or null) spliced in. */
function choices(schema: JsonSchema, root: JsonSchema): string[] {
  const one = resolve(schema, root);
  if (Array.isArray(one.enum)) return one.enum.map(String);
  const variants = (one.oneOf ?? one.anyOf) as JsonSchema[] | undefined;
  if (variants) return variants.flatMap((variant) => choices(variant, root));
  if ("const" in one) return [String(one.const)];
  const required = one.required as string[] | undefined;
  return [required?.[0] ?? takes(one, root)];
}

/** What a parameter takes: "integer, 1 to 10000", "one of sma, first_value",
 *  "number or null, 0.01 to 99". */
export function takes(schema: JsonSchema, root: JsonSchema): string {
  const resolved = resolve(schema, root);
  if (Array.isArray(resolved.enum) || resolved.oneOf || resolved.anyOf) {
    return `one of ${choices(resolved, root).join(", ")}`;
  }
  const type = Array.isArray(resolved.type) ? resolved.type.join(" or ") : String(resolved.type ?? "any");
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
