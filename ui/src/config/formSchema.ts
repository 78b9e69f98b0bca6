// The bot config's JSON Schema (from the OpenAPI document, generated from
// the host's own types) shaped for a form: references point inside the
// schema, decimals are text fields (they stay strings: no float ever
// touches a price), "this or null" becomes just "this" (left empty,
// the field is left out), and fields are labelled in words.

export type JsonSchema = Record<string, unknown>;

const DECIMAL_PATTERN = "^-?[0-9]+(\\.[0-9]+)?$";

function isDecimal(branches: JsonSchema[]): boolean {
  const types = branches.map((b) => b.type);
  return types.includes("number") && branches.some((b) => b.type === "string" && b.pattern === DECIMAL_PATTERN);
}

/** The schema a `$ref` names, in the document being shaped. */
type Lookup = (ref: string) => JsonSchema | undefined;

function lookupIn(definitions: Record<string, JsonSchema> | undefined): Lookup {
  return (ref) => definitions?.[ref.slice(ref.lastIndexOf("/") + 1)];
}

/** Whether `schema` (through its reference) is an object: a section. */
function isSection(schema: JsonSchema, lookup: Lookup): boolean {
  const target = typeof schema.$ref === "string" ? lookup(schema.$ref) : schema;
  return target?.type === "object";
}

/** A variant's name: its `kind`, or the one key it requires (`{percent_of_equity: 25}`). */
function variantTitle(branch: JsonSchema): string | undefined {
  const kind = (branch.properties as Record<string, JsonSchema> | undefined)?.kind?.const;
  if (kind !== undefined) return String(kind);
  const required = branch.required as string[] | undefined;
  return branch.type === "object" && required?.length === 1 ? required[0] : undefined;
}

/** Words a label writes in capitals. */
const ACRONYMS = new Set(["id", "url", "api", "atr", "rsi", "ema", "sma", "macd"]);

/** A field's label from its key: `max_open_orders` is "Max open orders". */
export function labelOf(key: string): string {
  const words = key.split("_").map((word) => (ACRONYMS.has(word) ? word.toUpperCase() : word));
  const text = words.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function shape(node: unknown, lookup: Lookup): unknown {
  if (Array.isArray(node)) return node.map((item) => shape(item, lookup));
  if (!node || typeof node !== "object") return node;
  const schema = node as JsonSchema;
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "$ref" && typeof value === "string") {
      out.$ref = value.replace("#/components/schemas/", "#/definitions/");
    } else {
      out[key] = shape(value, lookup);
    }
  }
  const anyOf = out.anyOf as JsonSchema[] | undefined;
  if (anyOf) {
    const nonNull = anyOf.filter((branch) => branch.type !== "null");
    if (isDecimal(nonNull)) {
      delete out.anyOf;
      out.type = "string";
      out.pattern = DECIMAL_PATTERN;
    } else if (nonNull.length === 1 && nonNull.length < anyOf.length) {
      delete out.anyOf;
      const [only] = nonNull;
      if (isSection(only, lookup)) {
        // An optional section (a risk rule): off, or on with its fields.
        out.oneOf = [
          { title: "off", type: "null" },
          { ...only, title: "on" },
        ];
      } else {
        Object.assign(out, only);
      }
    }
  }
  const oneOf = out.oneOf as JsonSchema[] | undefined;
  if (oneOf && !out.type) {
    const constants = oneOf.every((branch) => "const" in branch);
    const types = new Set(oneOf.map((branch) => branch.type));
    if (constants && types.size === 1) {
      // A choice among named values (mode, action): a select of them.
      out.type = [...types][0];
      out.oneOf = oneOf.map((branch) => ({ ...branch, title: String(branch.const) }));
    } else {
      // Variants (a feed, a position size): named by what tells them apart.
      out.oneOf = oneOf.map((branch) => {
        const title = variantTitle(branch);
        return title !== undefined && !branch.title ? { ...branch, title } : branch;
      });
    }
  }
  if (Array.isArray(out.type)) {
    const types = (out.type as string[]).filter((t) => t !== "null");
    out.type = types.length === 1 ? types[0] : types;
  }
  // Fields are labelled in words, not by their keys.
  const properties = out.properties as Record<string, JsonSchema> | undefined;
  if (properties && typeof properties === "object" && !Array.isArray(properties)) {
    out.properties = Object.fromEntries(
      Object.entries(properties).map(([key, field]) =>
        field && typeof field === "object" && !field.title ? [key, { ...field, title: labelOf(key) }] : [key, field],
      ),
    );
  }
  return out;
}

/** `name`'s schema from the document's components, ready for a form. */
export function formSchema(components: Record<string, JsonSchema>, name: string): JsonSchema {
  const definitions = shape(components, lookupIn(components)) as Record<string, JsonSchema>;
  return { ...(definitions[name] ?? {}), definitions };
}

/** A plugin's parameter schema, ready for a form (its own `$defs` kept). */
export function paramsSchema(schema: JsonSchema | undefined): JsonSchema {
  if (!schema) return { type: "object" };
  const shaped = shape(schema, lookupIn(schema.$defs as Record<string, JsonSchema> | undefined)) as JsonSchema;
  // rjsf resolves references against `definitions`; schemars writes `$defs`.
  const defs = shaped.$defs as Record<string, JsonSchema> | undefined;
  if (!defs) return shaped;
  const text = JSON.stringify(shaped).replaceAll('"#/$defs/', '"#/definitions/');
  const rewritten = JSON.parse(text) as JsonSchema;
  rewritten.definitions = rewritten.$defs;
  delete rewritten.$defs;
  delete rewritten.$schema;
  return rewritten;
}

/** rjsf's error tree from problem+json pointers under `prefix` ("/strategy/params"). */
export function errorTree(errors: { pointer: string; message: string }[], prefix = ""): Record<string, unknown> {
  const tree: Record<string, unknown> = {};
  for (const { pointer, message } of errors) {
    if (!pointer.startsWith(prefix)) continue;
    const path = pointer
      .slice(prefix.length)
      .split("/")
      .filter(Boolean)
      .map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"));
    let node = tree;
    for (const part of path) {
      node[part] = (node[part] as Record<string, unknown>) ?? {};
      node = node[part] as Record<string, unknown>;
    }
    const list = (node.__errors as string[]) ?? [];
    node.__errors = [...list, message];
  }
  return tree;
}

/** The bot config's form schema with the plugin's parameter schema in
 * place of `strategy.params` (its definitions kept apart under
 * `params-NAME`), and `strategy.plugin` a choice among `plugins`. */
export function configFormSchema(
  components: Record<string, JsonSchema>,
  pluginParams: JsonSchema | undefined,
  plugins: string[] = [],
): JsonSchema {
  const base = formSchema(components, "BotConfig");
  const definitions = { ...(base.definitions as Record<string, JsonSchema>) };
  const strategyRef = definitions.StrategyRef;
  if (!strategyRef) return base;
  const properties = { ...(strategyRef.properties as Record<string, JsonSchema>) };
  if (plugins.length > 0) properties.plugin = { ...properties.plugin, enum: plugins };
  if (pluginParams) {
    const params = paramsSchema(pluginParams);
    const renamed = JSON.parse(
      JSON.stringify(params).replaceAll('"#/definitions/', '"#/definitions/params-'),
    ) as JsonSchema;
    const own = (renamed.definitions as Record<string, JsonSchema>) ?? {};
    delete renamed.definitions;
    for (const [name, schema] of Object.entries(own)) definitions[`params-${name}`] = schema;
    properties.params = { ...renamed, title: "Strategy parameters" };
  } else {
    // No plugin chosen yet: nothing to fill in (the bare schema has no type
    // a form can show).
    properties.params = {
      type: "object",
      title: "Strategy parameters",
      description: "Choose a plugin: its parameters appear here.",
      properties: {},
    };
  }
  definitions.StrategyRef = { ...strategyRef, properties };
  return { ...base, definitions };
}
