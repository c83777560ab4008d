//! The dead-letter output: records that cannot be processed, with the
//! reason and where they came from — a JSONL file, a Kafka topic, or (when
//! none is configured) warnings in the log.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde::{Deserialize, Serialize};

use crate::config::Invalid;

/// `dead_letter: { type: file, path: out/dead-letter.jsonl }` or
/// `{ type: kafka, topic: ..., brokers: ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadLetterConfig {
    #[serde(rename = "type", default)]
    pub kind: DeadLetterKind,
    /// `file`: the JSONL file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `kafka`: the topic, brokers and any librdkafka producer settings.
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub brokers: Option<String>,
    #[serde(default)]
    pub options: crate::kafka_client::KafkaOptions,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DeadLetterKind {
    #[default]
    File,
    Kafka,
}

impl DeadLetterConfig {
    /// Rules serde cannot express; paths are relative to `dead_letter`.
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        match self.kind {
            DeadLetterKind::File if self.path.is_none() => {
                Err(Invalid::at("", "`type: file` needs `path`"))
            }
            DeadLetterKind::Kafka if self.topic.is_none() || self.brokers.is_none() => {
                Err(Invalid::at("", "`type: kafka` needs `topic` and `brokers`"))
            }
            _ => Ok(()),
        }
    }
}

/// How much of a bad record the file form keeps in `raw`.
pub(crate) const RAW_LIMIT_BYTES: usize = 1024;
const KAFKA_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("dead-letter file {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("dead-letter topic `{topic}`")]
    Kafka {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error(
        "dead-letter topic `{topic}`: the producer queue stayed full for {:.1} s (is the broker reachable?)",
        waited.as_secs_f64()
    )]
    QueueFull { topic: String, waited: Duration },
}

/// Where dead letters go; cheap to clone and shared by all nodes.
#[derive(Clone, Default)]
pub(crate) struct DeadLetters {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    output: Output,
    count: AtomicU64,
    /// The first letter's reason, while every letter since gave the same one.
    sole_reason: Mutex<SoleReason>,
}

#[derive(Default)]
enum SoleReason {
    #[default]
    NoLetters,
    Alike(String),
    Several,
}

#[derive(Default)]
enum Output {
    #[default]
    Log,
    /// Counted only: `validate`'s look at the first records.
    Discard,
    File(PathBuf, Mutex<LetterFile>),
    Kafka(Box<KafkaOutput>),
}

/// The dead-letter file and whether letters were written since the last sync.
struct LetterFile {
    writer: BufWriter<File>,
    unsynced: bool,
}

struct KafkaOutput {
    topic: String,
    producer: ThreadedProducer<DefaultProducerContext>,
    /// How long a send may wait for room in a full producer queue.
    queue_full_limit: Duration,
}

#[derive(Serialize)]
struct DeadLetter<'a> {
    position: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    raw: String,
}

/// A Kafka message's headers, to keep on its dead letter.
pub(crate) fn message_headers(message: &impl Message) -> Vec<(String, Vec<u8>)> {
    message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

impl DeadLetters {
    pub(crate) fn open(cfg: Option<&DeadLetterConfig>) -> Result<Self, DeadLetterError> {
        match cfg {
            None => Ok(DeadLetters::default()),
            Some(cfg) => match cfg.kind {
                DeadLetterKind::File => DeadLetters::to_file(
                    cfg.path
                        .as_deref()
                        .unwrap_or(Path::new("dead-letter.jsonl")),
                ),
                DeadLetterKind::Kafka => {
                    let topic = cfg.topic.clone().unwrap_or_default();
                    let mut client = rdkafka::ClientConfig::new();
                    client.set(
                        "bootstrap.servers",
                        cfg.brokers.as_deref().unwrap_or_default(),
                    );
                    cfg.options.apply(&mut client);
                    let producer = client.create().map_err(|source| DeadLetterError::Kafka {
                        topic: topic.clone(),
                        source,
                    })?;
                    Ok(DeadLetters::with(Output::Kafka(Box::new(KafkaOutput {
                        topic,
                        producer,
                        queue_full_limit: KAFKA_FLUSH_TIMEOUT,
                    }))))
                }
            },
        }
    }

    fn with(output: Output) -> Self {
        DeadLetters {
            inner: Arc::new(Inner {
                output,
                ..Inner::default()
            }),
        }
    }

    /// Appends to a JSONL file (created with its directory when missing).
    pub(crate) fn to_file(path: &Path) -> Result<Self, DeadLetterError> {
        let err = |source| DeadLetterError::File {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        Ok(DeadLetters::with(Output::File(
            path.to_path_buf(),
            Mutex::new(LetterFile {
                writer: BufWriter::new(file),
                unsynced: false,
            }),
        )))
    }

    /// Without a dead-letter output, bad records are logged as warnings and counted.
    pub(crate) fn to_log() -> Self {
        DeadLetters::default()
    }

    /// Counts bad records and keeps nothing (for `validate`'s sample).
    pub(crate) fn discarding() -> Self {
        DeadLetters::with(Output::Discard)
    }

    /// The reason every letter so far gave, when there are letters and all
    /// of them gave the same one.
    pub(crate) fn sole_reason(&self) -> Option<String> {
        match &*self
            .inner
            .sole_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
        {
            SoleReason::Alike(reason) => Some(reason.clone()),
            SoleReason::NoLetters | SoleReason::Several => None,
        }
    }

    fn tally(&self, reason: &str) {
        let mut sole = self
            .inner
            .sole_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *sole = match std::mem::take(&mut *sole) {
            SoleReason::NoLetters => SoleReason::Alike(reason.to_string()),
            SoleReason::Alike(first) if first == reason => SoleReason::Alike(first),
            SoleReason::Alike(_) | SoleReason::Several => SoleReason::Several,
        };
    }

    /// Records one bad record; the file form keeps `raw` up to [`RAW_LIMIT_BYTES`].
    pub(crate) fn send(
        &self,
        position: impl ToString,
        reason: &str,
        raw: &[u8],
    ) -> Result<(), DeadLetterError> {
        self.send_record(&position.to_string(), reason, None, raw, &[])
    }

    /// Records one bad record with its original key and headers (kept whole on Kafka).
    pub(crate) fn send_record(
        &self,
        position: &str,
        reason: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: &[(String, Vec<u8>)],
    ) -> Result<(), DeadLetterError> {
        self.inner.count.fetch_add(1, Ordering::Relaxed);
        self.tally(reason);
        crate::metrics::dead_letter();
        match &self.inner.output {
            Output::Discard => Ok(()),
            Output::Log => {
                tracing::warn!(
                    position,
                    reason,
                    "dead letter (no dead_letter output configured)"
                );
                Ok(())
            }
            Output::File(path, file) => {
                let letter = DeadLetter {
                    position,
                    reason,
                    key: key.map(|k| String::from_utf8_lossy(k).into_owned()),
                    raw: truncated(payload),
                };
                let mut line = serde_json::to_vec(&letter).expect("a struct of strings serializes");
                line.push(b'\n');
                let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                file.unsynced = true;
                file.writer
                    .write_all(&line)
                    .map_err(|source| DeadLetterError::File {
                        path: path.clone(),
                        source,
                    })
            }
            Output::Kafka(kafka) => kafka.send(position, reason, key, payload, headers),
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// Makes every dead letter sent so far durable (fsync, or Kafka delivery).
    pub(crate) fn flush(&self) -> Result<(), DeadLetterError> {
        match &self.inner.output {
            Output::Log | Output::Discard => Ok(()),
            Output::File(path, file) => {
                let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if !file.unsynced {
                    return Ok(());
                }
                let err = |source| DeadLetterError::File {
                    path: path.clone(),
                    source,
                };
                file.writer.flush().map_err(err)?;
                file.writer.get_ref().sync_all().map_err(err)?;
                file.unsynced = false;
                Ok(())
            }
            Output::Kafka(kafka) => {
                kafka
                    .producer
                    .flush(KAFKA_FLUSH_TIMEOUT)
                    .map_err(|source| DeadLetterError::Kafka {
                        topic: kafka.topic.clone(),
                        source,
                    })
            }
        }
    }
}

impl KafkaOutput {
    /// Queues one letter; waits at most `queue_full_limit` for room in a full queue.
    fn send(
        &self,
        position: &str,
        reason: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: &[(String, Vec<u8>)],
    ) -> Result<(), DeadLetterError> {
        let mut owned = OwnedHeaders::new_with_capacity(headers.len() + 2);
        for (name, value) in headers {
            owned = owned.insert(Header {
                key: name,
                value: Some(value),
            });
        }
        owned = owned
            .insert(Header {
                key: "vecpipe.reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "vecpipe.position",
                value: Some(position),
            });
        let mut record: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(&self.topic).payload(payload).headers(owned);
        if let Some(key) = key {
            record = record.key(key);
        }
        let started = std::time::Instant::now();
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    if started.elapsed() >= self.queue_full_limit {
                        return Err(DeadLetterError::QueueFull {
                            topic: self.topic.clone(),
                            waited: self.queue_full_limit,
                        });
                    }
                    record = back;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((source, _)) => {
                    return Err(DeadLetterError::Kafka {
                        topic: self.topic.clone(),
                        source,
                    });
                }
            }
        }
    }
}

fn truncated(raw: &[u8]) -> String {
    let cut = &raw[..raw.len().min(RAW_LIMIT_BYTES)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if raw.len() > RAW_LIMIT_BYTES {
        text.push('…');
    }
    text
}

impl crate::config::RelativePaths for DeadLetterConfig {
    fn rebase(&mut self, base: &std::path::Path) {
        crate::config::rebase_optional(base, &mut self.path);
        crate::config::RelativePaths::rebase(&mut self.options, base);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_are_json_lines_with_truncated_raw() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dl.jsonl");
        let dl = DeadLetters::to_file(&path).unwrap();
        dl.send("a.jsonl:1", "empty text", b"{}").unwrap();
        dl.send("a.jsonl:2", "too big", &vec![b'x'; 5000]).unwrap();
        dl.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["position"], "a.jsonl:1");
        assert_eq!(lines[0]["reason"], "empty text");
        assert_eq!(
            lines[1]["raw"].as_str().unwrap().chars().count(),
            RAW_LIMIT_BYTES + 1
        );
        assert_eq!(dl.count(), 2);
    }

    #[test]
    fn a_full_kafka_queue_fails_the_send_after_the_limit_instead_of_looping() {
        // Nothing listens on this port: the one-message queue never drains.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let producer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{port}"))
            .set("queue.buffering.max.messages", "1")
            .create()
            .unwrap();
        let dl = DeadLetters::with(Output::Kafka(Box::new(KafkaOutput {
            topic: "dead".into(),
            producer,
            queue_full_limit: Duration::from_millis(300),
        })));
        dl.send("a:1", "bad", b"x").unwrap();
        let started = std::time::Instant::now();
        let err = dl.send("a:2", "bad", b"y").unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            err.to_string(),
            "dead-letter topic `dead`: the producer queue stayed full for 0.3 s (is the broker reachable?)"
        );
    }
}
