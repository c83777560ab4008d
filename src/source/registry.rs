//! Records in the Confluent wire format (`format: avro | json_schema` on a
//! Kafka source): byte 0 is 0, bytes 1–4 the big-endian id of the writer's
//! schema in a Schema Registry, then one Avro datum or one JSON document.
//! Schemas are fetched by id (`GET /schemas/ids/{id}`) and cached, so a
//! topic whose writers move to a new schema version mid-stream decodes each
//! record with its own schema; JSON documents are validated against theirs.
//!
//! A record that cannot be decoded (no magic byte, an id the registry does
//! not know, a schema of the other kind, a datum or document that does not
//! fit its schema) is a dead letter; a registry that cannot be reached is a
//! transient failure, retried with backoff while `/health` says 503 — never
//! a dead letter.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apache_avro::Schema;
use serde::Deserialize;
use serde_json::{Map, Value};

/// `schema_registry: { url, ca_file, username, password, token }`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SchemaRegistryConfig {
    /// `http(s)://host:port` of a Confluent-compatible Schema Registry.
    pub url: String,
    /// PEM file of the CA that signed an `https://` registry's certificate
    /// (default: the system's roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Basic authentication (Confluent Cloud: the API key and secret).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Bearer authentication.
    #[serde(default)]
    pub token: Option<String>,
}

/// The password and token never appear in a printed form.
impl std::fmt::Debug for SchemaRegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("SchemaRegistryConfig")
            .field("url", &self.url)
            .field("ca_file", &self.ca_file)
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .field("token", &hidden(&self.token))
            .finish()
    }
}

impl SchemaRegistryConfig {
    /// The `Authorization` header, when credentials are set.
    fn authorization(&self) -> Option<String> {
        use base64::Engine as _;
        if let Some(token) = self.token.as_deref().filter(|t| !t.is_empty()) {
            return Some(format!("Bearer {token}"));
        }
        let user = self.username.as_deref()?;
        let password = self.password.as_deref().unwrap_or_default();
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Some(format!("Basic {pair}"))
    }

    /// Rules serde cannot express.
    pub(crate) fn validate(&self) -> Result<(), crate::config::Invalid> {
        use crate::config::Invalid;
        if self.token.is_some() && (self.username.is_some() || self.password.is_some()) {
            return Err(Invalid::at(
                "token",
                "give `token` (bearer) or `username` and `password` (basic), not both",
            ));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(Invalid::at(
                "username",
                "`username` and `password` go together (keep the password in the environment: `password: ${SCHEMA_REGISTRY_PASSWORD}`)",
            ));
        }
        if self.ca_file.is_some() && !self.url.starts_with("https://") {
            return Err(Invalid::at("ca_file", "`ca_file` is for an `https://` url"));
        }
        Ok(())
    }
}

/// Why a message did not decode.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The message itself is bad: a dead letter with this reason.
    #[error("{0}")]
    Record(String),
    /// The registry did not answer: retried, never a dead letter.
    #[error("Schema Registry {url}: {problem}")]
    Unreachable { url: String, problem: String },
    /// The registry refused us (credentials, certificate): final.
    #[error("Schema Registry {url} refused the connection: {reason}")]
    Refused { url: String, reason: String },
    /// The run was stopped while the registry did not answer.
    #[error("stopped while waiting for the Schema Registry")]
    Stopped(#[source] Box<RegistryError>),
}

impl crate::retry::Transient for RegistryError {
    fn is_transient(&self) -> bool {
        matches!(self, RegistryError::Unreachable { .. })
    }
}

/// What the records of a topic are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Avro,
    Protobuf,
    JsonSchema,
}

/// A writer's schema, ready to read with.
pub(crate) enum WriterSchema {
    Avro(Schema),
    Protobuf(prost_reflect::FileDescriptor),
    Json(Box<jsonschema::Validator>),
}

/// Decodes Confluent-framed records with schemas from one registry.
pub(crate) struct RegistryDecoder {
    url: String,
    encoding: Encoding,
    agent: ureq::Agent,
    authorization: Option<String>,
    schemas: Mutex<HashMap<u32, Arc<WriterSchema>>>,
}

/// How long one registry request may take.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

impl RegistryDecoder {
    pub(crate) fn new(
        cfg: &SchemaRegistryConfig,
        encoding: Encoding,
    ) -> Result<Self, RegistryError> {
        let url = cfg.url.trim_end_matches('/').to_string();
        let mut agent = ureq::AgentBuilder::new().timeout(REGISTRY_TIMEOUT);
        if let Some(ca_file) = &cfg.ca_file {
            let tls = crate::tls::client_config(Some(ca_file), None, "schema_registry.").map_err(
                |reason| RegistryError::Refused {
                    url: url.clone(),
                    reason,
                },
            )?;
            agent = agent.tls_config(Arc::new(tls));
        }
        Ok(RegistryDecoder {
            url,
            encoding,
            agent: agent.build(),
            authorization: cfg.authorization(),
            schemas: Mutex::new(HashMap::new()),
        })
    }

    /// `validate`'s look: the registry answers, and takes our credentials.
    pub(crate) fn check(&self) -> Result<(), RegistryError> {
        self.get(&format!("{}/subjects", self.url))
            .call()
            .map(|_| ())
            .map_err(|e| self.classify(e, "the subject list"))
    }

    /// A GET of `url`, with the credentials.
    fn get(&self, url: &str) -> ureq::Request {
        let request = self.agent.get(url);
        match &self.authorization {
            Some(authorization) => request.set("Authorization", authorization),
            None => request,
        }
    }

    /// A failed request as a refusal (credentials, certificate: final) or
    /// as the registry not answering (retried).
    fn classify(&self, error: ureq::Error, what: &str) -> RegistryError {
        let refused = |reason: String| RegistryError::Refused {
            url: self.url.clone(),
            reason,
        };
        match error {
            ureq::Error::Status(status @ (401 | 403), _) => refused(format!(
                "HTTP {status} for {what}; check `schema_registry.username` and `password`, or `token`"
            )),
            ureq::Error::Status(status, _) => RegistryError::Unreachable {
                url: self.url.clone(),
                problem: format!("HTTP {status} for {what}"),
            },
            ureq::Error::Transport(transport) => match tls_failure(&transport) {
                Some(tls) => refused(format!(
                    "TLS: {tls}; check `schema_registry.ca_file` (the CA that signed the registry's certificate)"
                )),
                None => RegistryError::Unreachable {
                    url: self.url.clone(),
                    problem: transport.to_string(),
                },
            },
        }
    }

    /// The JSON object a framed message holds; the registry is asked
    /// again (with backoff, `on_retry` told each time) until it answers or
    /// `stopping()` says the run is being stopped.
    pub(crate) fn decode(
        &self,
        message: &[u8],
        on_retry: impl FnMut(&RegistryError, Duration),
        stopping: impl Fn() -> bool,
    ) -> Result<Map<String, Value>, RegistryError> {
        let (id, datum) = frame(message)?;
        let fetch = || match self.schema(id) {
            Err(e @ RegistryError::Unreachable { .. }) if stopping() => {
                Err(RegistryError::Stopped(Box::new(e)))
            }
            outcome => outcome,
        };
        let schema = crate::retry::RetryPolicy::registry().run(on_retry, fetch)?;
        let value = match schema.as_ref() {
            WriterSchema::Avro(schema) => {
                let value = apache_avro::reader::datum::GenericDatumReader::builder(schema)
                    .build()
                    .and_then(|reader| reader.read_value(&mut &datum[..]))
                    .map_err(|e| {
                        RegistryError::Record(format!("Avro datum does not fit schema {id}: {e}"))
                    })?;
                Value::try_from(value).map_err(|e| {
                    RegistryError::Record(format!(
                        "Avro value of schema {id} has no JSON form: {e}"
                    ))
                })?
            }
            WriterSchema::Protobuf(file) => {
                super::protobuf::decode(file, datum).map_err(RegistryError::Record)?
            }
            WriterSchema::Json(validator) => {
                let value: Value = serde_json::from_slice(datum).map_err(|e| {
                    RegistryError::Record(format!("invalid JSON after the header: {e}"))
                })?;
                if let Err(e) = validator.validate(&value) {
                    return Err(RegistryError::Record(format!(
                        "does not match JSON Schema {id}: {e} (at `{}`)",
                        e.instance_path()
                    )));
                }
                value
            }
        };
        match value {
            Value::Object(object) => Ok(object),
            _ => Err(RegistryError::Record(format!(
                "schema {id} does not describe an object (a record)"
            ))),
        }
    }

    /// The writer schema `id`, from the cache or the registry.
    fn schema(&self, id: u32) -> Result<Arc<WriterSchema>, RegistryError> {
        if let Some(schema) = self.cache().get(&id) {
            return Ok(schema.clone());
        }
        let url = format!("{}/schemas/ids/{id}", self.url);
        let body: RegistrySchema = match self.get(&url).call() {
            Ok(response) => response
                .into_json()
                .map_err(|e| RegistryError::Unreachable {
                    url: self.url.clone(),
                    problem: format!("unreadable answer for schema {id}: {e}"),
                })?,
            Err(ureq::Error::Status(404, _)) => {
                return Err(RegistryError::Record(format!(
                    "schema id {id} is unknown to the Schema Registry"
                )));
            }
            Err(e) => return Err(self.classify(e, &format!("schema {id}"))),
        };
        // The registry leaves `schemaType` out for Avro.
        let kind = body.schema_type.as_deref().unwrap_or("AVRO");
        self.remember(id, kind, &body.schema)
    }

    /// Parses the writer schema `id` (of `kind`, the registry's `schemaType`)
    /// and caches it.
    pub(crate) fn remember(
        &self,
        id: u32,
        kind: &str,
        text: &str,
    ) -> Result<Arc<WriterSchema>, RegistryError> {
        let schema = match (self.encoding, kind) {
            (Encoding::Avro, "AVRO") => {
                WriterSchema::Avro(Schema::parse_str(text).map_err(|e| {
                    RegistryError::Record(format!("schema {id} is not valid Avro: {e}"))
                })?)
            }
            (Encoding::Protobuf, "PROTOBUF") => {
                WriterSchema::Protobuf(super::protobuf::compile(text).map_err(|e| {
                    RegistryError::Record(format!("schema {id} is not valid Protobuf: {e}"))
                })?)
            }
            (Encoding::JsonSchema, "JSON") => {
                let invalid = |e: String| {
                    RegistryError::Record(format!("schema {id} is not a valid JSON Schema: {e}"))
                };
                let document: Value =
                    serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
                WriterSchema::Json(Box::new(
                    jsonschema::validator_for(&document).map_err(|e| invalid(e.to_string()))?,
                ))
            }
            (encoding, kind) => {
                return Err(RegistryError::Record(format!(
                    "schema {id} is {kind}, not what `format: {}` reads",
                    match encoding {
                        Encoding::Avro => "avro",
                        Encoding::Protobuf => "protobuf",
                        Encoding::JsonSchema => "json_schema",
                    }
                )));
            }
        };
        let schema = Arc::new(schema);
        self.cache().insert(id, schema.clone());
        Ok(schema)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<WriterSchema>>> {
        self.schemas.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The TLS verdict inside a transport error, if that is what failed.
fn tls_failure(transport: &ureq::Transport) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> =
        std::error::Error::source(transport);
    while let Some(error) = cause {
        // rustls' verdict comes as itself, or inside an I/O error.
        let inner = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map_or(error, |inner| inner as &(dyn std::error::Error + 'static));
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        cause = error.source();
    }
    None
}

/// `GET /schemas/ids/{id}`'s answer.
#[derive(Deserialize)]
struct RegistrySchema {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
}

/// The schema id and the datum of a Confluent-framed message.
pub(crate) fn frame(message: &[u8]) -> Result<(u32, &[u8]), RegistryError> {
    match message {
        [0, a, b, c, d, datum @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), datum)),
        [0, ..] => Err(RegistryError::Record(
            "shorter than the Confluent wire format's 5-byte header".to_string(),
        )),
        _ => Err(RegistryError::Record(
            "not in the Confluent wire format (the first byte is not 0)".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_the_schema_id_and_bad_frames_say_why() {
        assert_eq!(frame(&[0, 0, 0, 1, 2, 9, 9]).unwrap(), (258, &[9u8, 9][..]));
        assert_eq!(
            frame(b"{\"id\": 1}").unwrap_err().to_string(),
            "not in the Confluent wire format (the first byte is not 0)"
        );
        assert_eq!(
            frame(&[0, 0, 1]).unwrap_err().to_string(),
            "shorter than the Confluent wire format's 5-byte header"
        );
    }
}
