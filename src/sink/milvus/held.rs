//! What a collection holds of documents, for incremental runs: the ids and
//! fingerprints of their rows (to skip unchanged documents), every document
//! id, and deleting documents (`run --sync`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use milvus::v2::prelude::{ConsistencyLevel, DeleteRequest, Error as SdkError, QueryRequest};
use tokio::runtime::Handle;

use super::{
    Health, INDEX_WAIT, MilvusConnection, MilvusError, MilvusSinkConfig, POLL_EVERY, in_filters,
    is_index_missing, poll, with_retries,
};
use crate::batch::columns;
use crate::sink::{DocumentStore, SinkError, StoredRows};

/// Milvus' largest query `limit`.
const QUERY_LIMIT: usize = 16_384;
/// Documents named per query or delete.
const DOCUMENTS_PER_REQUEST: usize = 256;
/// Rows per page when listing every document.
const PAGE_ROWS: usize = 4_096;

pub(super) struct MilvusDocuments {
    connection: Arc<MilvusConnection>,
    runtime: Handle,
    collection: String,
    max_retries: Option<usize>,
    health: Health,
    /// The collection's layout, once it exists.
    layout: OnceLock<Layout>,
    /// Whether a strongly consistent query went through (see `query_each`).
    caught_up: AtomicBool,
}

#[derive(Debug, Clone, Copy)]
struct Layout {
    fingerprint: bool,
    chunked: bool,
}

impl Layout {
    /// The field naming a row's document.
    fn key(self) -> &'static str {
        if self.chunked {
            columns::DOC_ID
        } else {
            columns::ID
        }
    }
}

impl MilvusDocuments {
    pub(super) fn new(
        connection: Arc<MilvusConnection>,
        runtime: Handle,
        cfg: &MilvusSinkConfig,
        health: Health,
    ) -> Self {
        MilvusDocuments {
            connection,
            runtime,
            collection: cfg.collection.clone(),
            max_retries: cfg.max_retries,
            health,
            layout: OnceLock::new(),
            caught_up: AtomicBool::new(false),
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
    fn call<T, F: std::future::Future<Output = Result<T, SdkError>>>(
        &self,
        operation: &'static str,
        request: impl Fn() -> F,
    ) -> Result<T, SinkError> {
        let outcome = with_retries(
            self.max_retries,
            |e, delay| {
                self.health.set(false);
                tracing::warn!(collection = %self.collection, error = %e, retry_in = ?delay, "Milvus {operation} failed; retrying");
            },
            || {
                self.runtime
                    .block_on(self.connection.on_loaded(&self.collection, &request))
                    .map_err(Box::new)
            },
        );
        if outcome.is_ok() {
            self.health.set(true);
        }
        outcome.map_err(|e| self.failed(operation, *e))
    }

    /// `None` while the collection does not exist.
    fn layout(&self) -> Result<Option<Layout>, SinkError> {
        if let Some(known) = self.layout.get() {
            return Ok(Some(*known));
        }
        let exists = self.call("has_collection", || {
            self.connection.exists(&self.collection)
        })?;
        if !exists {
            return Ok(None);
        }
        let schema = self.call("describe_collection", || {
            self.connection.schema(&self.collection)
        })?;
        self.load()?;
        let fields = schema.get_fields();
        let has = |name: &str| fields.iter().any(|f| f.get_name() == name);
        let layout = Layout {
            fingerprint: has(columns::FINGERPRINT),
            chunked: has(columns::DOC_ID),
        };
        if !layout.fingerprint {
            tracing::warn!(
                collection = %self.collection,
                "the collection has no `{}` field (it was created before incremental runs): every document is embedded again; drop it and run again to skip unchanged documents",
                columns::FINGERPRINT
            );
        }
        Ok(Some(*self.layout.get_or_init(|| layout)))
    }

    /// Loads the collection: queries need it, and a restarted server comes
    /// back with it released. A collection without its index yet is one a
    /// sink is creating (this run's, whose first batch is being written
    /// while the next one is looked up): the load waits for the index.
    fn load(&self) -> Result<(), SinkError> {
        let index_missing = |answer: &Result<(), SinkError>| {
            let missing = matches!(answer, Err(SinkError::Milvus(MilvusError::Request { source, .. })) if is_index_missing(source));
            if missing {
                tracing::debug!(collection = %self.collection, "the collection has no index yet: waiting for its sink to create it");
            }
            missing
        };
        poll(
            INDEX_WAIT,
            POLL_EVERY,
            || self.call("load_collection", || self.connection.load(&self.collection)),
            index_missing,
        )
    }

    /// Up to `limit` rows' `fields` (from `offset`).
    fn query(
        &self,
        filter: String,
        fields: &[&str],
        offset: usize,
        limit: usize,
    ) -> Result<Vec<Vec<String>>, SinkError> {
        Ok(self
            .query_each(vec![filter], fields, offset, limit)?
            .pop()
            .unwrap_or_default())
    }

    /// `query` for several filters at once, sent together.
    ///
    /// The first round is strongly consistent: it waits for the server's
    /// next time tick (about 0.4 s on Milvus 2.3), so it sees every write
    /// made before it, by any writer. Later rounds are session consistent:
    /// they see that, and every upsert and delete of this process (the SDK
    /// keeps their timestamps), without waiting for a tick each — one strong
    /// round per batch bounded a run at ~9k rows/s on the real server. What
    /// another writer changes meanwhile is seen a moment later, as a strong
    /// read racing that writer would see it.
    fn query_each(
        &self,
        filters: Vec<String>,
        fields: &[&str],
        offset: usize,
        limit: usize,
    ) -> Result<Vec<Vec<Vec<String>>>, SinkError> {
        let consistency = if self.caught_up.load(Ordering::Relaxed) {
            ConsistencyLevel::Session
        } else {
            ConsistencyLevel::Strong
        };
        let requests = filters
            .into_iter()
            .map(|filter| {
                QueryRequest::builder()
                    .collection_name(&self.collection)
                    .filter(filter)
                    .output_fields(fields.to_vec())
                    .consistency_level(consistency)
                    .offset(offset as i64)
                    .limit(limit as i64)
                    .build()
                    .map_err(|e| self.failed("query", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let client = &self.connection.client;
        let ask = || {
            self.call("query", || {
                futures_util::future::try_join_all(
                    requests.iter().map(|request| client.query(request.clone())),
                )
            })
        };
        let responses = ask()?;
        self.caught_up.store(true, Ordering::Relaxed);
        responses
            .iter()
            .map(|response| self.values(response.results(), fields))
            .collect()
    }

    /// Each row's `fields`, as strings.
    fn values(
        &self,
        results: &milvus::v2::prelude::QueryResults,
        fields: &[&str],
    ) -> Result<Vec<Vec<String>>, SinkError> {
        let mut rows = Vec::new();
        for row in results.rows().map_err(|e| self.failed("query", e))? {
            let entity = row.to_entity_row().map_err(|e| self.failed("query", e))?;
            rows.push(
                fields
                    .iter()
                    .map(|name| {
                        entity
                            .get(*name)
                            .and_then(|v| v.as_str())
                            .unwrap_or_default()
                            .to_string()
                    })
                    .collect(),
            );
        }
        Ok(rows)
    }
}

impl MilvusDocuments {
    /// The collection's row count, as the server reports `count(*)`.
    fn count(&self) -> Result<usize, SinkError> {
        self.call("count", || self.connection.count(&self.collection))
    }
}

impl MilvusDocuments {
    /// Every row's id and document, page by page in primary-key order
    /// (`id > last`): a page never ends the listing early (Milvus 2.3 may
    /// answer short pages; the SDK's iterator takes one for the end), only
    /// an empty one does.
    fn rows_by_key(&self, layout: Layout) -> Result<(usize, HashSet<String>), SinkError> {
        let fields = [columns::ID, layout.key()];
        let (mut rows, mut documents) = (0, HashSet::new());
        let mut filter = format!("{} != \"\"", columns::ID);
        loop {
            let page = self.query(filter, &fields, 0, PAGE_ROWS)?;
            let Some(last) = page.iter().map(|row| &row[0]).max() else {
                break;
            };
            filter = format!(
                "{} > {}",
                columns::ID,
                serde_json::to_string(last).expect("a string serializes")
            );
            rows += page.len();
            documents.extend(page.into_iter().filter_map(|mut row| row.pop()));
        }
        Ok((rows, documents))
    }

    /// Every row's document, page by page with `offset` (Milvus Lite
    /// answers a page in a stable order, but not the lowest keys first;
    /// servers cap `offset + limit` at 16,384).
    fn rows_by_offset(&self, layout: Layout) -> Result<(usize, HashSet<String>), SinkError> {
        let (mut rows, mut documents) = (0, HashSet::new());
        loop {
            let filter = format!("{} != \"\"", columns::ID);
            let page = self.query(filter, &[layout.key()], rows, PAGE_ROWS)?;
            if page.is_empty() {
                break;
            }
            rows += page.len();
            documents.extend(page.into_iter().filter_map(|mut row| row.pop()));
        }
        Ok((rows, documents))
    }
}

impl DocumentStore for MilvusDocuments {
    fn stored(
        &self,
        documents: &[&str],
        chunked: bool,
    ) -> Result<Option<HashMap<String, StoredRows>>, SinkError> {
        match self.layout()? {
            None => return Ok(Some(HashMap::new())),
            Some(layout) if !layout.fingerprint => return Ok(None),
            Some(_) => {}
        }
        // A row's document is its `doc_id`, or the row itself.
        let (key, fields) = if chunked {
            (
                columns::DOC_ID,
                vec![columns::ID, columns::FINGERPRINT, columns::DOC_ID],
            )
        } else {
            (columns::ID, vec![columns::ID, columns::FINGERPRINT])
        };
        let started = std::time::Instant::now();
        let mut stored: HashMap<String, StoredRows> = HashMap::new();
        let filters = in_filters(key, documents, DOCUMENTS_PER_REQUEST);
        for rows in self.query_each(filters, &fields, 0, QUERY_LIMIT)? {
            if rows.len() >= QUERY_LIMIT {
                continue; // cut short: these documents count as changed
            }
            for row in rows {
                let (id, fingerprint) = (row[0].clone(), row[1].clone());
                let document = row.get(2).unwrap_or(&id).clone();
                stored.entry(document).or_default().push((id, fingerprint));
            }
        }
        tracing::debug!(documents = documents.len(), took = ?started.elapsed(), "looked up stored documents");
        Ok(Some(stored))
    }

    fn present(&self, documents: &[&str]) -> Result<HashSet<String>, SinkError> {
        let Some(layout) = self.layout()? else {
            return Ok(HashSet::new());
        };
        let key = layout.key();
        let filters = in_filters(key, documents, DOCUMENTS_PER_REQUEST);
        Ok(self
            .query_each(filters, &[key], 0, QUERY_LIMIT)?
            .into_iter()
            .flatten()
            .filter_map(|mut row| row.pop())
            .collect())
    }

    fn documents(&self) -> Result<HashSet<String>, SinkError> {
        let Some(layout) = self.layout()? else {
            return Ok(HashSet::new());
        };
        // A listing short by one row would keep a deleted document; one
        // that disagrees with the server's own count is not trusted. Key
        // order pages every server that returns the lowest keys first (the
        // real one); the offset listing is for those that do not (Lite).
        let counted = self.count()?;
        let mut listed = 0;
        for listing in [Self::rows_by_key, Self::rows_by_offset] {
            let (rows, documents) = listing(self, layout)?;
            if rows == counted {
                return Ok(documents);
            }
            listed = rows;
        }
        Err(SinkError::Milvus(MilvusError::IncompleteListing {
            collection: self.collection.clone(),
            listed,
            counted,
        }))
    }

    fn delete(&self, documents: &[String]) -> Result<(), SinkError> {
        let Some(layout) = self.layout()? else {
            return Ok(());
        };
        for filter in in_filters(layout.key(), documents, DOCUMENTS_PER_REQUEST) {
            let request = DeleteRequest::builder()
                .collection_name(&self.collection)
                .filter(filter)
                .build()
                .map_err(|e| self.failed("delete", e))?;
            self.call("delete", || self.connection.client.delete(request.clone()))?;
        }
        Ok(())
    }
}
