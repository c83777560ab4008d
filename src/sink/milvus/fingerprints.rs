//! What a collection holds of some documents: their rows' ids and
//! fingerprints, for incremental runs to skip unchanged documents.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use milvus::v2::prelude::{
    ConsistencyLevel, DescribeCollectionRequest, Error as SdkError, HasCollectionRequest,
    QueryRequest,
};
use tokio::runtime::Handle;

use super::{MilvusConnection, MilvusError, MilvusSinkConfig, with_retries};
use crate::batch::columns;
use crate::sink::{FingerprintStore, SinkError, StoredRows};

/// Milvus' largest query `limit`.
const QUERY_LIMIT: usize = 16_384;
/// Documents asked about per query.
const DOCUMENTS_PER_QUERY: usize = 256;

pub(super) struct MilvusFingerprints {
    connection: Arc<MilvusConnection>,
    runtime: Handle,
    collection: String,
    max_retries: Option<usize>,
    /// Whether the collection has a fingerprint field, once known to exist.
    has_field: OnceLock<bool>,
}

impl MilvusFingerprints {
    pub fn new(connection: Arc<MilvusConnection>, runtime: Handle, cfg: &MilvusSinkConfig) -> Self {
        MilvusFingerprints {
            connection,
            runtime,
            collection: cfg.collection.clone(),
            max_retries: cfg.max_retries,
            has_field: OnceLock::new(),
        }
    }

    fn failed(&self, operation: &'static str, source: SdkError) -> SinkError {
        SinkError::Milvus(MilvusError::Request {
            operation,
            collection: self.collection.clone(),
            source: Box::new(source),
        })
    }

    /// One call, retried like the sink's writes while the server is away.
    fn call<T>(
        &self,
        operation: &'static str,
        request: impl Fn() -> Result<T, SdkError>,
    ) -> Result<T, SinkError> {
        with_retries(
            self.max_retries,
            |e, delay| {
                tracing::warn!(collection = %self.collection, error = %e, retry_in = ?delay, "Milvus {operation} failed; retrying");
            },
            || request().map_err(Box::new),
        )
        .map_err(|e| self.failed(operation, *e))
    }

    /// `None` while the collection does not exist; then whether it has the field.
    fn has_field(&self) -> Result<Option<bool>, SinkError> {
        if let Some(known) = self.has_field.get() {
            return Ok(Some(*known));
        }
        let client = &self.connection.client;
        let exists = HasCollectionRequest::builder()
            .collection_name(&self.collection)
            .build()
            .map_err(|e| self.failed("has_collection", e))?;
        let exists = self.call("has_collection", || {
            self.runtime.block_on(client.has_collection(exists.clone()))
        })?;
        if !exists.exists() {
            return Ok(None);
        }
        let describe = DescribeCollectionRequest::builder()
            .collection_name(&self.collection)
            .build()
            .map_err(|e| self.failed("describe_collection", e))?;
        let described = self.call("describe_collection", || {
            self.runtime
                .block_on(client.describe_collection(describe.clone()))
        })?;
        let has = described
            .description()
            .get_schema()
            .get_fields()
            .iter()
            .any(|f| f.get_name() == columns::FINGERPRINT);
        if !has {
            tracing::warn!(
                collection = %self.collection,
                "the collection has no `{}` field (it was created before incremental runs): every document is embedded again; drop it and run again to skip unchanged documents",
                columns::FINGERPRINT
            );
        }
        Ok(Some(*self.has_field.get_or_init(|| has)))
    }
}

impl FingerprintStore for MilvusFingerprints {
    fn stored(
        &self,
        documents: &[&str],
        chunked: bool,
    ) -> Result<Option<HashMap<String, StoredRows>>, SinkError> {
        match self.has_field()? {
            None => return Ok(Some(HashMap::new())),
            Some(false) => return Ok(None),
            Some(true) => {}
        }
        let key = if chunked {
            columns::DOC_ID
        } else {
            columns::ID
        };
        let mut stored: HashMap<String, StoredRows> = HashMap::new();
        for group in documents.chunks(DOCUMENTS_PER_QUERY) {
            let quoted: Vec<String> = group
                .iter()
                .map(|id| serde_json::to_string(id).expect("a string serializes"))
                .collect();
            let request = QueryRequest::builder()
                .collection_name(&self.collection)
                .filter(format!("{key} in [{}]", quoted.join(", ")))
                .output_fields([columns::ID, key, columns::FINGERPRINT])
                .consistency_level(ConsistencyLevel::Strong)
                .limit(QUERY_LIMIT as i64)
                .build()
                .map_err(|e| self.failed("query", e))?;
            let response = self.call("query", || {
                self.runtime
                    .block_on(self.connection.client.query(request.clone()))
            })?;
            let rows: Vec<_> = response
                .results()
                .rows()
                .map_err(|e| self.failed("query", e))?
                .collect();
            if rows.len() >= QUERY_LIMIT {
                // Cut short: these documents count as changed.
                continue;
            }
            for row in rows {
                let entity = row.to_entity_row().map_err(|e| self.failed("query", e))?;
                let text = |name: &str| {
                    entity
                        .get(name)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                stored
                    .entry(text(key))
                    .or_default()
                    .push((text(columns::ID), text(columns::FINGERPRINT)));
            }
        }
        Ok(Some(stored))
    }
}
