//! One metrics vocabulary for every node, exported for Prometheus, and the
//! daemon's health: `/metrics` and `/health` on a loopback address.
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `vecpipe_records_in_total` | counter | `node` |
//! | `vecpipe_records_out_total` | counter | `node` |
//! | `vecpipe_batch_seconds` | histogram | `node` |
//! | `vecpipe_dead_letters_total` | counter | |
//! | `vecpipe_embedding_tokens_total` | counter | |
//! | `vecpipe_documents_unchanged_total` | counter | |
//! | `vecpipe_kafka_records_total` | counter | `topic`, `partition` |
//! | `vecpipe_consumer_lag` | gauge | `topic`, `partition` |
//! | `vecpipe_sink_retries_total` | counter | `sink` |
//! | `vecpipe_sink_healthy` | gauge (1/0) | `sink` |
//! | `vecpipe_schema_registry_up` | gauge (1/0) | |

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static RUNNING: AtomicBool = AtomicBool::new(false);
static HAS_CONSUMER: AtomicBool = AtomicBool::new(false);
static CONSUMER_ASSIGNED: AtomicBool = AtomicBool::new(false);
static UNHEALTHY_SINKS: AtomicUsize = AtomicUsize::new(0);
static REGISTRY_DOWN: AtomicBool = AtomicBool::new(false);

pub fn records_in(node: &'static str, n: usize) {
    counter!("vecpipe_records_in_total", "node" => node).increment(n as u64);
}

pub fn records_out(node: &'static str, n: usize) {
    counter!("vecpipe_records_out_total", "node" => node).increment(n as u64);
}

pub fn batch_time(node: &'static str, elapsed: Duration) {
    histogram!("vecpipe_batch_seconds", "node" => node).record(elapsed.as_secs_f64());
}

pub fn dead_letter() {
    counter!("vecpipe_dead_letters_total").increment(1);
}

/// Documents an incremental run skipped: the sinks hold them as they are.
pub fn documents_unchanged(n: usize) {
    counter!("vecpipe_documents_unchanged_total").increment(n as u64);
}

pub fn embedding_tokens(n: usize) {
    counter!("vecpipe_embedding_tokens_total").increment(n as u64);
}

pub fn record_consumed(topic: &str, partition: i32) {
    HAS_CONSUMER.store(true, Ordering::Relaxed);
    counter!("vecpipe_kafka_records_total", "topic" => topic.to_string(), "partition" => partition.to_string())
        .increment(1);
}

pub fn consumer_lag(topic: &str, partition: i32, lag: i64) {
    gauge!("vecpipe_consumer_lag", "topic" => topic.to_string(), "partition" => partition.to_string()).set(lag as f64);
}

pub fn set_consumer_assigned(assigned: bool) {
    HAS_CONSUMER.store(true, Ordering::Relaxed);
    CONSUMER_ASSIGNED.store(assigned, Ordering::Relaxed);
}

pub fn sink_retry(sink: &'static str) {
    counter!("vecpipe_sink_retries_total", "sink" => sink).increment(1);
}

/// A sink reports itself unhealthy while it retries, healthy once a write succeeds.
pub fn set_sink_healthy(sink: &'static str, healthy: bool, was_healthy: bool) {
    gauge!("vecpipe_sink_healthy", "sink" => sink).set(if healthy { 1.0 } else { 0.0 });
    match (was_healthy, healthy) {
        (true, false) => {
            UNHEALTHY_SINKS.fetch_add(1, Ordering::Relaxed);
        }
        (false, true) => {
            UNHEALTHY_SINKS.fetch_sub(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

/// Cleared while a Schema Registry the source needs does not answer.
pub fn set_schema_registry_up(up: bool) {
    REGISTRY_DOWN.store(!up, Ordering::Relaxed);
    gauge!("vecpipe_schema_registry_up").set(if up { 1.0 } else { 0.0 });
}

/// Set once the pipeline's nodes are built and running, cleared when it ends.
pub fn set_running(running: bool) {
    RUNNING.store(running, Ordering::Relaxed);
}

/// Healthy: the pipeline runs, its consumer (if any) has partitions, and no sink is failing.
pub fn healthy() -> bool {
    let consumer_ok =
        !HAS_CONSUMER.load(Ordering::Relaxed) || CONSUMER_ASSIGNED.load(Ordering::Relaxed);
    RUNNING.load(Ordering::Relaxed)
        && consumer_ok
        && !REGISTRY_DOWN.load(Ordering::Relaxed)
        && UNHEALTHY_SINKS.load(Ordering::Relaxed) == 0
}

/// Installs the Prometheus recorder for this process.
pub fn install() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ])?
        .install_recorder()
}

/// Serves `/metrics` and `/health` until the process ends.
pub async fn serve(address: SocketAddr, handle: PrometheusHandle) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(move || std::future::ready(handle.render())))
        .route(
            "/health",
            get(|| async {
                if healthy() {
                    (StatusCode::OK, "ok\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n")
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(%address, "serving /metrics and /health");
    axum::serve(listener, app).await
}
