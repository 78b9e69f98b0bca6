// One config document edited two ways: a form generated from the bot
// schema and the chosen plugin's parameter schema, or its YAML. The server
// is the only validator: its errors are shown at the field their JSON
// Pointer names (and listed above the YAML).

import { useMemo, useState } from "react";
import Form, { getDefaultRegistry } from "@rjsf/core";
import { createSchemaUtils, type ErrorSchema, type ObjectFieldTemplateProps, type RJSFSchema, type UiSchema, type WidgetProps } from "@rjsf/utils";
import { customizeValidator } from "@rjsf/validator-ajv8";
import type { ApiProblem } from "../api/client";
import { useOpenApi, useStrategies } from "../api/hooks";
import { ErrorText, Loading } from "../components/States";
import { configFormSchema, errorTree, type JsonSchema } from "./formSchema";
import { applyMergePatch, fromYaml, mergePatch, sortKeys, toYaml, type Doc } from "./document";

// Used by rjsf to resolve schemas only (the form is submitted unvalidated:
// the server checks it); formats like uint64 are not ajv's to judge.
const validator = customizeValidator({ ajvOptionsOverrides: { validateFormats: false } });

const UI_SCHEMA: UiSchema = {
  "ui:submitButtonOptions": { norender: true },
  // Descriptions (doc comments of the Rust types) write `code` in Markdown.
  "ui:globalOptions": { enableMarkdownInDescription: true },
  "ui:order": ["id", "name", "mode", "autostart", "strategy", "market", "capital", "*"],
  // The plugin first: its parameters follow from it.
  strategy: { "ui:order": ["plugin", "version", "params", "*"] },
};

/** The form of an existing bot's config: its id shows, read-only. */
const FIXED_ID_UI_SCHEMA: UiSchema = {
  ...UI_SCHEMA,
  id: { "ui:readonly": true },
};

/** Sections open at first: what most edits touch. Any section with an error opens. */
const OPEN_SECTIONS = new Set(["strategy", "params", "market", "capital", "risk"]);

function hasErrors(errors: ErrorSchema | undefined): boolean {
  if (!errors) return false;
  return Object.entries(errors).some(([key, value]) =>
    key === "__errors" ? Array.isArray(value) && value.length > 0 : hasErrors(value as ErrorSchema),
  );
}

/** Nested objects fold away (the whole bot schema is long); the top level does not. */
function Section({ title, description, properties, fieldPathId, errorSchema, registry, schema, uiSchema }: ObjectFieldTemplateProps) {
  const { DescriptionFieldTemplate: Description } = registry.templates;
  const body = (
    <>
      {description && (
        <Description
          id={`${fieldPathId.$id}__description`}
          description={description}
          schema={schema}
          uiSchema={uiSchema}
          registry={registry}
        />
      )}
      {properties.filter((p) => !p.hidden).map((p) => p.content)}
    </>
  );
  const path = fieldPathId.path;
  if (path.length === 0) return <div className="form-root">{body}</div>;
  const open = (path.length <= 2 && OPEN_SECTIONS.has(String(path[path.length - 1]))) || hasErrors(errorSchema);
  return (
    <details className="form-section" open={open}>
      <summary>{title || String(path[path.length - 1])}</summary>
      {body}
    </details>
  );
}

const TEMPLATES = { ObjectFieldTemplate: Section };

const { SelectWidget: PlainSelect } = getDefaultRegistry().widgets;

/** rjsf's select; the one that picks a variant (a feed, a position size, a
 * rule on or off) has no label of its own, so it is wrapped in one naming
 * the field. */
function Select(props: WidgetProps) {
  const picksVariant = /__(one|any)of_select$/.test(props.name);
  if (!picksVariant) return <PlainSelect {...props} />;
  return (
    <label className="variant-select">
      <span className="visually-hidden">{props.label}</span>
      <PlainSelect {...props} />
    </label>
  );
}

const WIDGETS = { SelectWidget: Select };


interface Props {
  value: Doc;
  onChange: (value: Doc) => void;
  /** Told whether the YAML being typed reads as a document: while it does
   * not, `value` is the last one that did, and must not be sent. */
  onReadable?: (readable: boolean) => void;
  problem?: ApiProblem | null;
  readOnly?: boolean;
  /** The config of an existing bot: its id names the bot and cannot change. */
  fixedId?: boolean;
}

type View = "form" | "yaml";

/** The parameter schema of the plugin `strategy` names (its version, or the highest). */
function pluginSchema(
  strategies: { name: string; version: string; params_schema: unknown }[],
  strategy: Doc | undefined,
): Record<string, unknown> | undefined {
  const name = strategy?.plugin;
  const version = strategy?.version;
  const candidates = strategies.filter((s) => s.name === name && (!version || s.version === version));
  const chosen = candidates.sort((a, b) => b.version.localeCompare(a.version, undefined, { numeric: true }))[0];
  const schema = chosen?.params_schema;
  return schema && typeof schema === "object" ? (schema as Record<string, unknown>) : undefined;
}

/** The form schema for `value`: the bot schema with the parameter schema
 * of the plugin it names. */
export function useConfigSchema(value: Doc) {
  const openapi = useOpenApi();
  const strategies = useStrategies();
  const list = useMemo(() => strategies.data?.items ?? [], [strategies.data]);
  const params = pluginSchema(list, value.strategy as Doc | undefined);
  const names = useMemo(() => [...new Set(list.map((s) => s.name))].sort(), [list]);
  const schema = useMemo(
    () => (openapi.data ? configFormSchema(openapi.data.components.schemas, params, names) : null),
    [openapi.data, params, names],
  );
  return {
    schema,
    isLoading: openapi.isLoading || strategies.isLoading,
    error: openapi.error ?? strategies.error,
  };
}

/** `doc` as the form holds it (defaults filled in), keys sorted: what a
 * diff compares, so only real changes show. */
export function canonical(schema: JsonSchema | null, doc: Doc): Doc {
  if (!schema) return sortKeys(doc) as Doc;
  const utils = createSchemaUtils(validator, schema as RJSFSchema);
  return sortKeys(utils.getDefaultFormState(schema as RJSFSchema, doc)) as Doc;
}

/** What the person changed from `base` to `draft` (RFC 7396), defaults the
 * form filled in left out: they are shown, not chosen. */
export function changesFrom(schema: JsonSchema | null, base: Doc, draft: Doc): Doc {
  return mergePatch(canonical(schema, base), canonical(schema, draft));
}

/** `base` with only what the person changed: the config to send, written
 * as it was plus those changes (not every default the form shows). */
export function changedCopy(schema: JsonSchema | null, base: Doc, draft: Doc): Doc {
  return applyMergePatch(base, changesFrom(schema, base, draft)) as Doc;
}

export function ConfigEditor({ value, onChange, onReadable, problem, readOnly = false, fixedId = false }: Props) {
  const [view, setView] = useState<View>("form");
  const [yamlText, setYamlText] = useState("");
  const [yamlError, setYamlError] = useState<string | null>(null);
  /** The person asked for the form while the YAML does not read. */
  const [leaving, setLeaving] = useState(false);
  const { schema, isLoading, error } = useConfigSchema(value);
  const extraErrors = useMemo(
    () => (problem?.problem.errors ? errorTree(problem.problem.errors) : undefined),
    [problem],
  );

  if (isLoading) return <Loading what="the config schema" />;
  if (!schema) return <ErrorText error={error} />;

  /** Switch views. The form cannot show YAML that does not read: leaving it
   * for the form asks first, since the form shows the last document that
   * read and the edits since are lost (`discard`). */
  const show = (next: View, discard = false) => {
    if (next === view) return;
    if (view === "yaml" && next === "form" && yamlError && !discard) {
      setLeaving(true);
      return;
    }
    setLeaving(false);
    if (next === "yaml") {
      setYamlText(toYaml(value));
    }
    setYamlError(null);
    onReadable?.(true);
    setView(next);
  };

  return (
    <div className="config-editor">
      <div className="tabs" role="tablist">
        <button role="tab" aria-selected={view === "form"} onClick={() => show("form")}>
          Form
        </button>
        <button role="tab" aria-selected={view === "yaml"} onClick={() => show("yaml")}>
          YAML
        </button>
      </div>
      {view === "form" ? (
        <Form
          schema={schema as RJSFSchema}
          uiSchema={fixedId ? FIXED_ID_UI_SCHEMA : UI_SCHEMA}
          formData={value}
          validator={validator}
          templates={TEMPLATES}
          widgets={WIDGETS}
          noValidate
          showErrorList={false}
          extraErrors={extraErrors as never}
          disabled={readOnly}
          onChange={(event) => onChange(event.formData as Doc)}
        />
      ) : (
        <div className="yaml-view">
          <textarea
            aria-label="Config as YAML"
            spellCheck={false}
            readOnly={readOnly}
            value={yamlText}
            rows={Math.min(40, Math.max(12, yamlText.split("\n").length + 1))}
            onChange={(event) => {
              setYamlText(event.target.value);
              setLeaving(false);
              const parsed = fromYaml(event.target.value);
              if ("error" in parsed) {
                setYamlError(parsed.error);
                onReadable?.(false);
              } else {
                setYamlError(null);
                onReadable?.(true);
                onChange(parsed.doc);
              }
            }}
          />
          {yamlError && (
            <p className="error" role="alert">
              YAML: {yamlError}
            </p>
          )}
          {yamlError && leaving && (
            <p className="error" role="alert">
              The form cannot show YAML that does not read: it would show the last version that did, and the edits since
              would be lost.{" "}
              <button type="button" className="small" onClick={() => show("form", true)}>
                Discard them and show the form
              </button>
            </p>
          )}
        </div>
      )}
    </div>
  );
}
