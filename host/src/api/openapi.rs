//! The route table and the OpenAPI 3.1 document generated from it.
//!
//! Every endpoint is declared once, as an [`Endpoint`]: method, path, who
//! may call it, its body limit, and the Rust types of its request and
//! response. The router is built from the same list (see `api::router`), so
//! the document cannot miss a route, and the schemas come from the types
//! the handlers serialise (schemars), so it cannot drift from them.

use axum::http::Method;
use axum::routing::MethodRouter;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use super::AppState;
use super::auth::Role;
use super::problem::Problem;

/// Bodies of JSON requests: small.
pub const JSON_BODY_LIMIT: usize = 256 * 1024;
/// Plugin uploads.
pub const WASM_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Largest candle upload: about 3.5 million CSV rows.
pub const CANDLE_BODY_LIMIT: usize = 256 * 1024 * 1024;

pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T`, registered under `#/components/schemas`.
pub fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health).
    Open,
    /// A token with at least this role.
    Role(Role),
    /// A token, checked by the handler itself (the WebSocket accepts it in
    /// its first message, since browsers cannot set headers on it).
    Handshake(Role),
}

pub struct Endpoint {
    pub method: Method,
    /// Below /api/v1, in axum's syntax (`/bots/{id}`).
    pub path: &'static str,
    pub summary: &'static str,
    pub access: Access,
    pub body_limit: usize,
    /// Whether an `Idempotency-Key` header makes retries safe.
    pub idempotent: bool,
    /// Media types and the schema of the request body.
    pub request: Option<(&'static [&'static str], SchemaFn)>,
    /// Whether the body may be left out (a command's options).
    pub body_optional: bool,
    /// Whether `If-Match` (a config version's ETag) makes the call conditional.
    pub conditional: bool,
    /// Status and schema of a successful answer (None: not JSON).
    pub success: u16,
    pub response: Option<SchemaFn>,
    pub response_media: &'static str,
    /// Query parameters: name and description.
    pub query: &'static [(&'static str, &'static str)],
    pub handler: MethodRouter<AppState>,
}

impl Endpoint {
    fn new(
        method: Method,
        path: &'static str,
        summary: &'static str,
        role: Role,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Self {
            method,
            path,
            summary,
            access: Access::Role(role),
            body_limit: JSON_BODY_LIMIT,
            idempotent: false,
            body_optional: false,
            conditional: false,
            request: None,
            success: 200,
            response: None,
            response_media: "application/json",
            query: &[],
            handler,
        }
    }

    pub fn get(
        path: &'static str,
        summary: &'static str,
        role: Role,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Self::new(Method::GET, path, summary, role, handler)
    }

    pub fn post(
        path: &'static str,
        summary: &'static str,
        role: Role,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Self::new(Method::POST, path, summary, role, handler)
    }

    pub fn put(
        path: &'static str,
        summary: &'static str,
        role: Role,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Self::new(Method::PUT, path, summary, role, handler)
    }

    pub fn delete(
        path: &'static str,
        summary: &'static str,
        role: Role,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Self::new(Method::DELETE, path, summary, role, handler)
    }

    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    pub fn returns<T: JsonSchema>(mut self) -> Self {
        self.response = Some(schema_of::<T>);
        self
    }

    pub fn returns_media(mut self, media: &'static str) -> Self {
        self.response_media = media;
        self
    }

    pub fn status(mut self, status: u16) -> Self {
        self.success = status;
        self
    }

    pub fn json_body<T: JsonSchema>(mut self) -> Self {
        self.request = Some((&["application/json"], schema_of::<T>));
        self
    }

    /// A JSON body that may be left out.
    pub fn optional_json_body<T: JsonSchema>(mut self) -> Self {
        self.body_optional = true;
        self.json_body::<T>()
    }

    /// `If-Match` with the config version's ETag applies the change only
    /// to that version (412 otherwise).
    pub fn conditional(mut self) -> Self {
        self.conditional = true;
        self
    }

    /// A body in JSON or YAML.
    pub fn document_body<T: JsonSchema>(self) -> Self {
        self.document_body_with(schema_of::<T>)
    }

    /// A body in JSON or YAML whose schema `schema` builds.
    pub fn document_body_with(mut self, schema: SchemaFn) -> Self {
        self.request = Some((&["application/json", "application/yaml"], schema));
        self
    }

    pub fn wasm_body(mut self) -> Self {
        self.request = Some((
            &["application/wasm", "multipart/form-data"],
            |_| schemars::json_schema!({ "type": "string", "format": "binary" }),
        ));
        self.body_limit = WASM_BODY_LIMIT;
        self
    }

    /// Candles as CSV (ours or Binance klines) or an Arrow IPC / Feather file.
    pub fn candle_body(mut self) -> Self {
        self.request = Some((
            super::extract::CANDLE_MEDIA_TYPES,
            |_| schemars::json_schema!({ "type": "string", "format": "binary" }),
        ));
        self.body_limit = CANDLE_BODY_LIMIT;
        self
    }

    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    pub fn query(mut self, params: &'static [(&'static str, &'static str)]) -> Self {
        self.query = params;
        self
    }
}

/// Path parameters of an axum path (`{id}` segments).
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn problem_response(generator: &mut SchemaGenerator, description: &str) -> Value {
    let schema = schema_of::<Problem>(generator);
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": schema } }
    })
}

/// The OpenAPI 3.1 document of `endpoints` (paths below `/api/v1`).
pub fn document(endpoints: &[Endpoint], version: &str) -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    let mut generator = settings.into_generator();
    let mut paths: Map<String, Value> = Map::new();
    for endpoint in endpoints {
        let mut operation = Map::new();
        operation.insert("summary".into(), json!(endpoint.summary));
        operation.insert(
            "operationId".into(),
            json!(format!(
                "{}{}",
                endpoint.method.as_str().to_lowercase(),
                endpoint
                    .path
                    .replace(['/', '{', '}', '-'], "_")
                    .trim_end_matches('_')
            )),
        );
        let mut parameters: Vec<Value> = path_params(endpoint.path)
            .into_iter()
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        parameters.extend(endpoint.query.iter().map(|(name, description)| {
            json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } })
        }));
        if endpoint.idempotent {
            parameters.push(json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "A retried request with the same key returns the first answer instead of acting twice.",
                "schema": { "type": "string", "maxLength": 200 }
            }));
        }
        if endpoint.conditional {
            parameters.push(json!({
                "name": "If-Match", "in": "header", "required": false,
                "description": "The config version's ETag (`\"v3\"`): the change is made only if that version is still in force (412 otherwise; 400 for a header that is not a list of entity tags).",
                "schema": { "type": "string", "maxLength": 200 }
            }));
        }
        if !parameters.is_empty() {
            operation.insert("parameters".into(), Value::Array(parameters));
        }
        if let Some((media_types, schema)) = endpoint.request {
            let schema = Value::from(schema(&mut generator));
            let content: Map<String, Value> = media_types
                .iter()
                .map(|m| (m.to_string(), json!({ "schema": schema })))
                .collect();
            operation.insert(
                "requestBody".into(),
                json!({ "required": !endpoint.body_optional, "content": content }),
            );
        }
        let mut responses = Map::new();
        let success = match endpoint.response {
            Some(schema) => json!({
                "description": "success",
                "content": { endpoint.response_media: { "schema": Value::from(schema(&mut generator)) } }
            }),
            None => json!({ "description": "success" }),
        };
        responses.insert(endpoint.success.to_string(), success);
        let mut failures = vec![("400", "malformed request"), ("404", "unknown resource")];
        match endpoint.access {
            Access::Open => {}
            Access::Role(_) | Access::Handshake(_) => failures.extend([
                ("401", "no valid token"),
                ("403", "role too low"),
                ("429", "rate limited"),
            ]),
        }
        if endpoint.request.is_some() {
            failures.extend([
                ("413", "body too large"),
                ("415", "wrong content type"),
                ("422", "invalid document: every error with its JSON Pointer"),
            ]);
        }
        if endpoint.method != Method::GET {
            failures.push(("409", "not allowed in the current state"));
        }
        for (status, description) in failures {
            responses.insert(status.into(), problem_response(&mut generator, description));
        }
        operation.insert("responses".into(), Value::Object(responses));
        match endpoint.access {
            Access::Open => {
                operation.insert("security".into(), json!([]));
            }
            Access::Role(role) | Access::Handshake(role) => {
                operation.insert("x-required-role".into(), json!(role.as_str()));
            }
        }
        let item = paths
            .entry(format!("/api/v1{}", endpoint.path))
            .or_insert_with(|| json!({}));
        if let Value::Object(item) = item {
            item.insert(
                endpoint.method.as_str().to_lowercase(),
                Value::Object(operation),
            );
        }
    }
    let schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "stratbox control API",
            "version": version,
            "description": "Control and watch stratbox trading bots. Decimals are strings; times are RFC 3339 UTC; errors are RFC 9457 problem+json."
        },
        "servers": [{ "url": "/" }],
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        },
        "security": [{ "bearer": [] }],
        "paths": paths
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_are_found() {
        assert_eq!(
            path_params("/bots/{id}/orders/{order_id}"),
            ["id", "order_id"]
        );
        assert!(path_params("/bots").is_empty());
    }
}
