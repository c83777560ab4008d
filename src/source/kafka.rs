//! Kafka: a consumer-group member reading JSON or text records. Offsets are
//! committed only up to the highest contiguous offset per partition whose
//! batches every sink acknowledged (or dead-lettered), so a crash loses
//! nothing; together with idempotent sinks it duplicates nothing either.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::Deserialize;

use super::records::{RecordFields, Rows};
use super::{AckHandler, RecordSource, SourceComponent, SourceContext, SourceError};
use crate::batch::{Ack, AckOutcome, Envelope, OffsetRange, Position, TopicPartition};
use crate::config::PositiveInt;
use crate::config::{Invalid, Surroundings};
use crate::dead_letter::DeadLetters;
use crate::kafka_client::{KafkaOptions, Refusal, Refusals, Refused};
use crate::source::debezium::{self, Change};
use crate::source::records::json_object;
use crate::source::registry::{Encoding, RegistryDecoder, RegistryError, SchemaRegistryConfig};
use serde_json::{Map, Value};

const POLL: Duration = Duration::from_millis(100);

/// Batches in flight per partition, in consumption order.
#[derive(Default)]
pub(crate) struct OffsetTracker {
    in_flight: HashMap<TopicPartition, VecDeque<InFlight>>,
    committable: HashMap<TopicPartition, i64>,
    /// The last offset taken for commit per owned partition, for lag.
    committed: HashMap<TopicPartition, i64>,
}

struct InFlight {
    batch: u64,
    /// The offset after the batch's last record of this partition.
    next_offset: i64,
    done: bool,
}

impl OffsetTracker {
    fn register(&mut self, batch: u64, ranges: &[OffsetRange]) {
        for (tp, _, last) in ranges {
            self.in_flight
                .entry(tp.clone())
                .or_default()
                .push_back(InFlight {
                    batch,
                    next_offset: last + 1,
                    done: false,
                });
        }
    }

    /// Marks a delivered batch done and advances each partition over its done prefix.
    pub(crate) fn acknowledge(&mut self, batch: u64, ranges: &[OffsetRange]) {
        for (tp, _, _) in ranges {
            let Some(queue) = self.in_flight.get_mut(tp) else {
                continue;
            };
            if let Some(entry) = queue.iter_mut().find(|e| e.batch == batch) {
                entry.done = true;
            }
            while queue.front().is_some_and(|e| e.done) {
                let entry = queue.pop_front().expect("front exists");
                self.committable.insert(tp.clone(), entry.next_offset);
            }
        }
    }

    fn take(&mut self, only: Option<&[TopicPartition]>) -> Vec<(TopicPartition, i64)> {
        let keys: Vec<TopicPartition> = match only {
            Some(only) => only
                .iter()
                .filter(|tp| self.committable.contains_key(*tp))
                .cloned()
                .collect(),
            None => self.committable.keys().cloned().collect(),
        };
        let taken: Vec<(TopicPartition, i64)> = keys
            .into_iter()
            .filter_map(|tp| self.committable.remove(&tp).map(|offset| (tp, offset)))
            .collect();
        self.committed.extend(taken.iter().cloned());
        taken
    }

    fn forget(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.in_flight.remove(tp);
            self.committable.remove(tp);
            self.committed.remove(tp);
        }
    }
}

/// Commits offsets; also handles rebalances (commit what is done, forget the rest).
pub(crate) struct KafkaContext {
    tracker: Arc<Mutex<OffsetTracker>>,
    /// Made durable before a revocation commits, as before every commit.
    dead_letters: DeadLetters,
    /// Why the brokers refused a connection, for the error that stops the source.
    refusals: Arc<Refusals>,
}

impl ClientContext for KafkaContext {
    /// librdkafka's log has said it already; a refusal is kept for the
    /// error that stops the source.
    fn error(&self, error: KafkaError, reason: &str) {
        self.refusals.note(&error, reason);
    }
}

impl ConsumerContext for KafkaContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let revoked: Vec<TopicPartition> = list
                .elements()
                .iter()
                .map(|e| (Arc::from(e.topic()), e.partition()))
                .collect();
            let mut tracker = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
            let done = tracker.take(Some(&revoked));
            // Batches still in flight for these partitions are not committed:
            // the next owner reads them again, and the sinks' upserts absorb it.
            tracker.forget(&revoked);
            drop(tracker);
            // The dead letters of the finished batches first, as for every
            // commit; if they cannot be made durable, nothing is committed
            // and the next owner reads those batches again.
            match self.dead_letters.flush() {
                Ok(()) => commit(consumer, &done, CommitMode::Sync),
                Err(e) => tracing::error!(
                    error = %crate::error::report(&e),
                    "dead letters could not be made durable; the revoked partitions' offsets are not committed"
                ),
            }
            crate::metrics::set_consumer_assigned(false);
            tracing::info!(partitions = revoked.len(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                crate::metrics::set_consumer_assigned(list.count() > 0);
                tracing::info!(partitions = list.count(), "partitions assigned");
            }
            Rebalance::Error(e) => tracing::error!(error = %e, "rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }
}

fn commit(
    consumer: &BaseConsumer<KafkaContext>,
    offsets: &[(TopicPartition, i64)],
    mode: CommitMode,
) {
    if offsets.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in offsets {
        if let Err(e) = list.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            tracing::error!(error = %e, "cannot build the commit list");
            return;
        }
    }
    match consumer.commit(&list, mode) {
        Ok(()) => tracing::debug!(partitions = offsets.len(), "committed offsets"),
        Err(e) => {
            tracing::warn!(error = %e, "offset commit failed; it is retried with the next commit")
        }
    }
}

/// `{ type: kafka, brokers, topics, group_id, format: json|text, ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KafkaSourceConfig {
    /// `host:port[,host:port…]`
    pub brokers: String,
    pub topics: Vec<String>,
    pub group_id: String,
    #[serde(default)]
    pub format: KafkaFormat,
    /// JSON field holding the id; without it (and without `key_as_id`), a hash of the text.
    #[serde(default)]
    pub id_field: Option<String>,
    #[serde(default = "crate::source::records::default_text_field")]
    pub text_field: String,
    #[serde(default)]
    pub metadata: Vec<String>,
    /// Use the message key as the document id.
    #[serde(default)]
    pub key_as_id: bool,
    /// Any librdkafka setting (`security.protocol`, `sasl.*`, `ssl.*`,
    /// `session.timeout.ms`, …); secret values never appear in a printed form.
    #[serde(default)]
    pub options: KafkaOptions,
    #[serde(default = "crate::source::records::default_batch_rows")]
    pub batch_rows: PositiveInt,
    /// Longest wait to fill a batch once its first record arrived.
    #[serde(default = "default_max_latency_ms")]
    pub max_latency_ms: PositiveInt,
    #[serde(default = "crate::source::records::default_max_text_bytes")]
    pub max_text_bytes: PositiveInt,
    /// `debezium`: each message is a Debezium change event (see `debezium.rs`).
    #[serde(default)]
    pub envelope: MessageEnvelope,
    /// Where `format: avro`, `protobuf` and `json_schema` find the writers' schemas.
    #[serde(default)]
    pub schema_registry: Option<SchemaRegistryConfig>,
}

/// How a message wraps its record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MessageEnvelope {
    /// The message is the record; a tombstone deletes the key's document.
    #[default]
    None,
    /// A Debezium change event: `c`/`r`/`u` write `after`, `d` deletes.
    Debezium,
}

fn default_max_latency_ms() -> PositiveInt {
    PositiveInt(200)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum KafkaFormat {
    /// A JSON object per message.
    #[default]
    Json,
    /// The payload is the text; the key (or topic/partition@offset) is the id.
    Text,
    /// Avro in the Confluent wire format, schemas from `schema_registry`.
    Avro,
    /// Protobuf in the Confluent wire format (with message indexes), the
    /// writers' `.proto` text from `schema_registry`.
    Protobuf,
    /// JSON in the Confluent wire format, validated against its JSON Schema
    /// from `schema_registry`.
    JsonSchema,
}

impl SourceComponent for KafkaSourceConfig {
    fn kind() -> &'static str {
        "kafka"
    }

    fn fields(&self) -> RecordFields {
        RecordFields::new(
            &self.id_field,
            &self.text_field,
            &self.metadata,
            self.max_text_bytes,
        )
    }

    fn is_bounded(&self) -> bool {
        false
    }

    fn validate(&self, _around: &Surroundings) -> Result<(), Invalid> {
        match (self.format, &self.schema_registry) {
            (KafkaFormat::Avro | KafkaFormat::Protobuf | KafkaFormat::JsonSchema, None) => {
                return Err(Invalid::at(
                    "format",
                    "`format: avro`, `protobuf` and `json_schema` need `schema_registry: { url: http://HOST:PORT }`",
                ));
            }
            (KafkaFormat::Json | KafkaFormat::Text, Some(_)) => {
                return Err(Invalid::at(
                    "schema_registry",
                    "a Schema Registry is for `format: avro`, `protobuf` or `json_schema`",
                ));
            }
            _ => {}
        }
        if self.envelope == MessageEnvelope::Debezium {
            if self.format == KafkaFormat::Text {
                return Err(Invalid::at(
                    "envelope",
                    "`envelope: debezium` reads Debezium's JSON, Avro or Protobuf: use `format: json`, `avro`, `protobuf` or `json_schema`",
                ));
            }
            if self.id_field.is_none() || self.key_as_id {
                return Err(Invalid::at(
                    "envelope",
                    "`envelope: debezium` needs `id_field`: the row's key column, found in `after` and in a delete's `before` (not `key_as_id`)",
                ));
            }
        }
        if let Some(registry) = &self.schema_registry {
            registry
                .validate()
                .map_err(|e| e.within("schema_registry"))?;
        }
        Ok(())
    }

    fn open(&self, ctx: SourceContext) -> Result<Box<dyn RecordSource>, SourceError> {
        Ok(Box::new(KafkaSource::open(self, ctx)?))
    }

    fn origin_key(&self) -> &'static str {
        "brokers"
    }

    /// Brokers and topics are asked directly; no consumer joins the group.
    fn check(&self, _dead_letters: &DeadLetters) -> Result<SchemaRef, SourceError> {
        check_kafka(self)?;
        if let Some(registry) = registry_decoder(self)? {
            registry.check().map_err(SourceError::RegistryRefused)?;
        }
        Ok(self.fields().schema())
    }
}

pub(crate) struct KafkaSource {
    consumer: Arc<BaseConsumer<KafkaContext>>,
    tracker: Arc<Mutex<OffsetTracker>>,
    cfg: KafkaSourceConfig,
    fields: RecordFields,
    schema: SchemaRef,
    ctx: SourceContext,
    next_batch: u64,
    registry: Option<RegistryDecoder>,
}

impl KafkaSource {
    pub(crate) fn open(cfg: &KafkaSourceConfig, ctx: SourceContext) -> Result<Self, SourceError> {
        let mut client = client_config(cfg);
        // Offsets are ours to commit, after the sinks acknowledged.
        client
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        let tracker = Arc::new(Mutex::new(OffsetTracker::default()));
        let refusals = Arc::new(Refusals::default());
        let consumer: BaseConsumer<KafkaContext> = client
            .create_with_context(KafkaContext {
                tracker: tracker.clone(),
                dead_letters: ctx.dead_letters.clone(),
                refusals: refusals.clone(),
            })
            .map_err(|e| kafka_error(cfg, e))?;
        let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| kafka_error(cfg, e))?;
        // Unhealthy until the group assigns partitions.
        crate::metrics::set_consumer_assigned(false);
        let fields = cfg.fields();
        Ok(KafkaSource {
            consumer: Arc::new(consumer),
            tracker,
            cfg: cfg.clone(),
            schema: fields.schema(),
            fields,
            ctx,
            next_batch: 0,
            registry: registry_decoder(cfg)?,
        })
    }

    /// The JSON object a `json`, `avro` or `json_schema` message holds; `Ok(Err(reason))`
    /// for a bad one (a dead letter). A Schema Registry that does not answer
    /// is waited for; a stop while waiting is an error.
    fn object(&self, bytes: &[u8]) -> Result<Result<Map<String, Value>, String>, SourceError> {
        let Some(registry) = &self.registry else {
            return Ok(json_object(bytes));
        };
        let outcome = registry.decode(
            bytes,
            |e, delay| {
                crate::metrics::set_schema_registry_up(false);
                tracing::warn!(error = %e, retry_in = ?delay, "Schema Registry unreachable; retrying");
            },
            || self.ctx.stop.is_raised(),
        );
        match outcome {
            Ok(object) => {
                crate::metrics::set_schema_registry_up(true);
                Ok(Ok(object))
            }
            Err(RegistryError::Record(reason)) => Ok(Err(reason)),
            Err(e @ (RegistryError::Unreachable { .. } | RegistryError::Stopped(_))) => {
                Err(SourceError::RegistryUnreachable(e))
            }
            Err(e @ RegistryError::Refused { .. }) => Err(SourceError::RegistryRefused(e)),
        }
    }

    /// Decodes one message into `rows`; `Ok(Err(reason))` when it cannot be.
    fn decode(
        &self,
        key: Option<&[u8]>,
        payload: &[u8],
        fallback_id: &str,
        rows: &mut Rows,
    ) -> Result<Result<(), String>, SourceError> {
        let key = match key {
            Some(key) if self.cfg.key_as_id || self.cfg.format == KafkaFormat::Text => {
                match std::str::from_utf8(key) {
                    Ok(key) => Some(key),
                    Err(e) => return Ok(Err(format!("key is not UTF-8: {e}"))),
                }
            }
            _ => None,
        };
        if self.cfg.format == KafkaFormat::Text {
            return Ok(self
                .fields
                .decode_text(payload, Some(key.unwrap_or(fallback_id)), rows));
        }
        Ok(self.object(payload)?.and_then(|object| {
            self.fields
                .decode_object(&object, key.filter(|_| self.cfg.key_as_id), rows)
        }))
    }

    /// Adds one message to the batch: a row, a delete (a tombstone), or a
    /// dead letter.
    fn take(
        &self,
        message: &BorrowedMessage<'_>,
        position: &str,
        rows: &mut Rows,
        deletes: &mut Vec<String>,
    ) -> Result<(), SourceError> {
        if self.cfg.envelope == MessageEnvelope::Debezium {
            return self.take_change(message, position, rows, deletes);
        }
        let Some(payload) = message.payload() else {
            // A tombstone deletes the document whose id is the key.
            return match message.key().map(std::str::from_utf8) {
                Some(Ok(id)) => {
                    deletes.push(id.to_string());
                    Ok(())
                }
                _ => self.dead_letter(message, position, "tombstone without a UTF-8 key", &[]),
            };
        };
        match self.decode(message.key(), payload, position, rows)? {
            Ok(()) => Ok(()),
            Err(reason) => self.dead_letter(message, position, &reason, payload),
        }
    }

    /// `message` to the dead letter, with `reason` and its `payload`.
    fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        position: &str,
        reason: &str,
        payload: &[u8],
    ) -> Result<(), SourceError> {
        let headers = crate::dead_letter::message_headers(message);
        self.ctx
            .dead_letters
            .send_record(position, reason, message.key(), payload, &headers)?;
        Ok(())
    }

    /// Adds one Debezium change event to the batch: a row, a delete, or a
    /// dead letter; the tombstone after a delete, a truncate and a logical
    /// message add nothing.
    fn take_change(
        &self,
        message: &BorrowedMessage<'_>,
        position: &str,
        rows: &mut Rows,
        deletes: &mut Vec<String>,
    ) -> Result<(), SourceError> {
        let Some(payload) = message.payload() else {
            tracing::debug!(%position, "tombstone after a Debezium delete: nothing to do");
            return Ok(());
        };
        let id_field = self.cfg.id_field.as_deref().unwrap_or_default();
        let key = || match message.key() {
            Some(key) => self.object(key),
            None => Ok(Err("the message has no key".to_string())),
        };
        let change = match self.object(payload)? {
            Ok(event) => debezium::change(event, key, id_field)?,
            Err(reason) => Err(reason),
        };
        let outcome = match change {
            Ok(Change::Upsert(after)) => self.fields.decode_object(&after, None, rows),
            Ok(Change::Delete(id)) => {
                deletes.push(id);
                Ok(())
            }
            Ok(Change::Skip(what)) => {
                tracing::warn!(%position, "Debezium {what} event skipped: it names no documents to write or delete");
                Ok(())
            }
            Err(reason) => Err(reason),
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(reason) => self.dead_letter(message, position, &reason, payload),
        }
    }

    /// The batch so far, with its ack; its offsets are registered for commits.
    fn seal(
        &mut self,
        records: usize,
        ranges: BTreeMap<(Arc<str>, i32), (i64, i64)>,
        rows: Rows,
        deletes: Vec<String>,
    ) -> Envelope {
        let batch = self.next_batch;
        self.next_batch += 1;
        let ranges: Vec<OffsetRange> = ranges
            .into_iter()
            .map(|(tp, (first, last))| (tp, first, last))
            .collect();
        self.tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .register(batch, &ranges);
        let ack = Ack::new(
            Position::Kafka {
                batch,
                ranges: Arc::new(ranges),
            },
            records,
            self.ctx.acks.clone(),
        );
        Envelope {
            batch: rows.finish(self.schema.clone()),
            ack,
            deletes,
        }
    }
}

/// The decoder of `format: avro`, `protobuf` or `json_schema`.
fn registry_decoder(cfg: &KafkaSourceConfig) -> Result<Option<RegistryDecoder>, SourceError> {
    let Some(registry) = &cfg.schema_registry else {
        return Ok(None);
    };
    let encoding = match cfg.format {
        KafkaFormat::JsonSchema => Encoding::JsonSchema,
        KafkaFormat::Protobuf => Encoding::Protobuf,
        _ => Encoding::Avro,
    };
    RegistryDecoder::new(registry, encoding)
        .map(Some)
        .map_err(SourceError::RegistryRefused)
}

/// The consumer settings: brokers, group, then any librdkafka setting of
/// `options` (security.protocol, sasl.*, session.timeout.ms, …).
fn client_config(cfg: &KafkaSourceConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &cfg.brokers)
        .set("group.id", &cfg.group_id)
        .set("auto.offset.reset", "earliest");
    cfg.options.apply(&mut client);
    client
}

/// How long `validate` waits for the brokers' metadata.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long each metadata attempt of the check waits.
const CHECK_SLICE: Duration = Duration::from_millis(500);

/// A client context that logs nothing: the check's answer is its result, and
/// librdkafka's connection errors would only repeat it. It keeps the last
/// refusal, which the metadata call reports only as a timeout.
#[derive(Default)]
struct Quiet(Refusals);

impl ClientContext for Quiet {
    fn log(&self, _: rdkafka::config::RDKafkaLogLevel, _: &str, _: &str) {}
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.note(&error, reason);
    }
}

impl ConsumerContext for Quiet {}

/// The brokers answer and every topic exists (for `vecpipe validate`).
fn check_kafka(cfg: &KafkaSourceConfig) -> Result<(), SourceError> {
    let consumer: BaseConsumer<Quiet> = client_config(cfg)
        .create_with_context(Quiet::default())
        .map_err(|e| kafka_error(cfg, e))?;
    let deadline = Instant::now() + CHECK_TIMEOUT;
    let metadata = loop {
        match consumer.fetch_metadata(None, CHECK_SLICE) {
            Ok(metadata) => break metadata,
            Err(e) => {
                // Polling runs the error callback, which names a refusal.
                let _ = consumer.poll(Duration::ZERO);
                if let Some(refused) = consumer.context().0.last() {
                    return Err(refused_error(cfg, refused));
                }
                if Instant::now() >= deadline {
                    return Err(kafka_error(cfg, e));
                }
            }
        }
    };
    let missing: Vec<String> = cfg
        .topics
        .iter()
        .filter(|topic| {
            !metadata
                .topics()
                .iter()
                .any(|t| t.name() == topic.as_str() && !t.partitions().is_empty())
        })
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SourceError::MissingTopics {
            brokers: cfg.brokers.clone(),
            topics: missing.join(", "),
        })
    }
}

fn refused_error(cfg: &KafkaSourceConfig, source: Refused) -> SourceError {
    SourceError::KafkaRefused {
        brokers: cfg.brokers.clone(),
        source,
    }
}

fn kafka_error(cfg: &KafkaSourceConfig, source: KafkaError) -> SourceError {
    SourceError::Kafka {
        brokers: cfg.brokers.clone(),
        source,
    }
}

impl RecordSource for KafkaSource {
    fn next_batch(&mut self) -> Result<Option<Envelope>, SourceError> {
        let mut rows = Rows::new(&self.fields);
        let mut records = 0;
        let mut ranges: BTreeMap<(Arc<str>, i32), (i64, i64)> = BTreeMap::new();
        let mut deadline: Option<Instant> = None;
        let mut deletes = Vec::new();
        let max_latency = Duration::from_millis(self.cfg.max_latency_ms.get() as u64);
        loop {
            if self.ctx.stop.is_raised() && records == 0 {
                return Ok(None);
            }
            // A tombstone ends its batch, so a delete never precedes a write it follows.
            if records >= self.cfg.batch_rows.get()
                || !deletes.is_empty()
                || self.ctx.stop.is_raised()
                || deadline.is_some_and(|d| Instant::now() >= d)
            {
                break;
            }
            let message = match self.consumer.poll(POLL) {
                None => continue,
                Some(Err(e)) => {
                    // A refusal is final: stop rather than retry forever.
                    if Refusal::of(&e).is_some()
                        && let Some(refused) = self.consumer.context().refusals.last()
                    {
                        return Err(refused_error(&self.cfg, refused));
                    }
                    tracing::warn!(error = %e, "Kafka consumer error");
                    continue;
                }
                Some(Ok(message)) => message,
            };
            deadline.get_or_insert_with(|| Instant::now() + max_latency);
            records += 1;
            crate::metrics::record_consumed(message.topic(), message.partition());
            let (partition, offset) = (message.partition(), message.offset());
            let topic: Arc<str> = Arc::from(message.topic());
            let range = ranges
                .entry((topic.clone(), partition))
                .or_insert((offset, offset));
            range.1 = offset;
            let position = format!("{topic}/{partition}@{offset}");
            self.take(&message, &position, &mut rows, &mut deletes)?;
        }
        Ok(Some(self.seal(records, ranges, rows, deletes)))
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn total_records(&self) -> Option<u64> {
        None
    }

    fn ack_handler(&self) -> Option<Arc<dyn AckHandler>> {
        Some(Arc::new(KafkaCommitter {
            consumer: self.consumer.clone(),
            tracker: self.tracker.clone(),
            last_lag_report: Mutex::new(None),
        }))
    }
}

/// Turns acknowledgements into offset commits.
struct KafkaCommitter {
    consumer: Arc<BaseConsumer<KafkaContext>>,
    tracker: Arc<Mutex<OffsetTracker>>,
    last_lag_report: Mutex<Option<Instant>>,
}

/// How often consumer lag is measured.
const LAG_INTERVAL: Duration = Duration::from_secs(10);

impl KafkaCommitter {
    /// Consumer lag per partition: the high watermark minus the committed offset.
    fn report_lag(&self, committed: &HashMap<TopicPartition, i64>) {
        for ((topic, partition), offset) in committed {
            if let Ok((_, high)) =
                self.consumer
                    .fetch_watermarks(topic, *partition, Duration::from_millis(500))
            {
                crate::metrics::consumer_lag(topic, *partition, (high - offset).max(0));
            }
        }
    }
}

impl AckHandler for KafkaCommitter {
    fn on_outcome(&self, outcome: &AckOutcome) {
        if let (true, Position::Kafka { batch, ranges }) = (outcome.delivered, &outcome.position) {
            self.tracker
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .acknowledge(*batch, ranges);
        }
    }

    /// The runner has made the dead letters durable before calling this.
    fn flush(&self, last: bool) {
        let (done, committed) = {
            let mut tracker = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
            (tracker.take(None), tracker.committed.clone())
        };
        commit(
            &self.consumer,
            &done,
            if last {
                CommitMode::Sync
            } else {
                CommitMode::Async
            },
        );
        // Every LAG_INTERVAL, for every owned partition committed so far (so
        // the figure does not go stale once the topic is drained; revoked
        // partitions are forgotten): each partition is a broker round trip.
        let mut last_report = self
            .last_lag_report
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !committed.is_empty() && last_report.is_none_or(|t| t.elapsed() >= LAG_INTERVAL) {
            *last_report = Some(Instant::now());
            self.report_lag(&committed);
        }
    }
}

impl crate::config::RelativePaths for KafkaSourceConfig {
    fn rebase(&mut self, base: &std::path::Path) {
        crate::config::RelativePaths::rebase(&mut self.options, base);
        if let Some(registry) = &mut self.schema_registry {
            crate::config::rebase_optional(base, &mut registry.ca_file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        (Arc::from("t"), p)
    }

    #[test]
    fn offsets_advance_only_over_contiguous_acknowledged_batches() {
        let mut tracker = OffsetTracker::default();
        tracker.register(0, &[(tp(0), 0, 9), (tp(1), 0, 4)]);
        tracker.register(1, &[(tp(0), 10, 19)]);
        tracker.register(2, &[(tp(0), 20, 29), (tp(1), 5, 9)]);
        tracker.acknowledge(1, &[(tp(0), 10, 19)]);
        assert!(tracker.take(None).is_empty(), "batch 0 is still in flight");
        tracker.acknowledge(0, &[(tp(0), 0, 9), (tp(1), 0, 4)]);
        let mut done = tracker.take(None);
        done.sort();
        assert_eq!(done, vec![(tp(0), 20), (tp(1), 5)]);
        tracker.acknowledge(2, &[(tp(0), 20, 29), (tp(1), 5, 9)]);
        let mut done = tracker.take(None);
        done.sort();
        assert_eq!(done, vec![(tp(0), 30), (tp(1), 10)]);
    }

    #[test]
    fn revoked_partitions_forget_their_batches() {
        let mut tracker = OffsetTracker::default();
        tracker.register(0, &[(tp(0), 0, 9)]);
        tracker.forget(&[tp(0)]);
        tracker.acknowledge(0, &[(tp(0), 0, 9)]);
        assert!(tracker.take(None).is_empty());
    }

    #[test]
    fn lag_is_measured_only_for_partitions_still_owned() {
        let mut tracker = OffsetTracker::default();
        tracker.register(0, &[(tp(0), 0, 9), (tp(1), 0, 4)]);
        tracker.acknowledge(0, &[(tp(0), 0, 9), (tp(1), 0, 4)]);
        tracker.take(None);
        assert_eq!(tracker.committed.len(), 2);
        tracker.forget(&[tp(1)]);
        assert_eq!(tracker.committed, HashMap::from([(tp(0), 10)]));
    }
}
