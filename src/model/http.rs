//! Models served elsewhere: one small JSON-over-HTTP client with timeouts,
//! retries on 429/5xx/transport errors (the one retry policy, `crate::retry`), and clear
//! errors for other statuses and malformed responses. API keys are sent as
//! `Authorization: Bearer …` and never logged.

use std::time::Duration;

use serde_json::Value;

use super::ModelError;

/// The default of a remote provider's `timeout_secs`.
pub(crate) fn default_timeout_secs() -> crate::config::PositiveInt {
    crate::config::PositiveInt(30)
}

/// The default of a remote provider's `max_retries`.
pub(crate) fn default_retries() -> usize {
    3
}

#[derive(Debug, Clone)]
pub(crate) struct HttpOptions {
    pub base_url: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
    pub max_retries: usize,
}

impl HttpOptions {
    /// From a remote provider's config keys.
    pub(crate) fn new(
        base_url: &Option<String>,
        api_key: &Option<String>,
        timeout_secs: crate::config::PositiveInt,
        max_retries: usize,
    ) -> Self {
        HttpOptions {
            base_url: base_url.clone().unwrap_or_default(),
            api_key: api_key.clone(),
            timeout: Duration::from_secs(timeout_secs.get() as u64),
            max_retries,
        }
    }
}

pub(crate) struct HttpClient {
    agent: ureq::Agent,
    options: HttpOptions,
}

impl HttpClient {
    pub(crate) fn new(options: HttpOptions) -> Self {
        let agent = ureq::AgentBuilder::new().timeout(options.timeout).build();
        HttpClient { agent, options }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.options.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// POSTs `body` as JSON and returns the JSON response; 429, 5xx and
    /// transport failures are retried under the one retry policy
    /// (`crate::retry`), waiting at least what `Retry-After` asks.
    pub(crate) fn post(&self, path: &str, body: &Value) -> Result<Value, ModelError> {
        let url = self.url(path);
        let fail = |message: String| ModelError::Remote {
            url: url.clone(),
            message,
        };
        let max_retries = self.options.max_retries;
        let outcome = crate::retry::RetryPolicy::http(max_retries).run(
            |failure: &Failure, delay| {
                tracing::warn!(%url, error = %failure.message, retry_in = ?delay, "model request failed; retrying");
            },
            || self.try_post(&url, body),
        );
        match outcome {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                let start: String = text.chars().take(200).collect();
                fail(format!("malformed JSON response ({e}): {start}"))
            }),
            Err(failure) if failure.transient => Err(fail(format!(
                "{} (after {max_retries} retries)",
                failure.message
            ))),
            Err(failure) => Err(fail(failure.message)),
        }
    }

    /// One POST: the response's text, or what went wrong.
    fn try_post(&self, url: &str, body: &Value) -> Result<String, Failure> {
        let mut request = self.agent.post(url).set("Content-Type", "application/json");
        if let Some(key) = self.options.api_key.as_deref().filter(|k| !k.is_empty()) {
            request = request.set("Authorization", &format!("Bearer {key}"));
        }
        match request.send_json(body) {
            Ok(response) => response.into_string().map_err(|e| Failure {
                message: format!("cannot read the response: {e}"),
                transient: false,
                retry_after: None,
            }),
            Err(ureq::Error::Status(code, response)) if code == 429 || code >= 500 => {
                Err(Failure {
                    message: format!("HTTP {code} {}", response.status_text()),
                    transient: true,
                    retry_after: response
                        .header("Retry-After")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs),
                })
            }
            Err(ureq::Error::Status(code, response)) => {
                let text: String = response
                    .into_string()
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
                Err(Failure {
                    message: format!("HTTP {code}: {text}"),
                    transient: false,
                    retry_after: None,
                })
            }
            Err(ureq::Error::Transport(e)) => Err(Failure {
                message: transport_problem(&e),
                transient: true,
                retry_after: None,
            }),
        }
    }
}

/// One failed POST.
struct Failure {
    message: String,
    transient: bool,
    /// `Retry-After` in seconds, when the server sent it.
    retry_after: Option<Duration>,
}

impl crate::retry::Transient for Failure {
    fn is_transient(&self) -> bool {
        self.transient
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// A transport error without the URL (the caller names it once).
fn transport_problem(e: &ureq::Transport) -> String {
    let head = match e.message() {
        Some(message) => format!("{}: {message}", e.kind()),
        None => e.kind().to_string(),
    };
    crate::error::with_causes(head, std::error::Error::source(e))
}

/// OpenAI-compatible `/embeddings`: one vector per input, in input order.
pub(crate) fn openai_embeddings(
    client: &HttpClient,
    model: &str,
    texts: &[&str],
) -> Result<Vec<Vec<f32>>, ModelError> {
    let response = client.post(
        "embeddings",
        &serde_json::json!({"model": model, "input": texts}),
    )?;
    let malformed = |what: &str| ModelError::Remote {
        url: client.url("embeddings"),
        message: format!("malformed embeddings response: {what}"),
    };
    let data = response["data"]
        .as_array()
        .ok_or_else(|| malformed("no `data` list"))?;
    if data.len() != texts.len() {
        return Err(malformed(&format!(
            "{} vectors for {} inputs",
            data.len(),
            texts.len()
        )));
    }
    let mut vectors = vec![Vec::new(); texts.len()];
    for (position, item) in data.iter().enumerate() {
        let index = item["index"].as_u64().map_or(position, |i| i as usize);
        let vector: Vec<f32> = item["embedding"]
            .as_array()
            .ok_or_else(|| malformed("an item has no `embedding`"))?
            .iter()
            .map(|v| {
                v.as_f64()
                    .map(|v| v as f32)
                    .ok_or_else(|| malformed("a non-numeric value"))
            })
            .collect::<Result<_, _>>()?;
        *vectors
            .get_mut(index)
            .ok_or_else(|| malformed("an index out of range"))? = vector;
    }
    Ok(vectors)
}

/// The common rerank API (`{query, documents, top_n}`): TEI answers a list of
/// `{index, score}`, Cohere/Jina `{results: [{index, relevance_score}]}`.
pub(crate) fn rerank_scores(
    client: &HttpClient,
    model: &str,
    query: &str,
    documents: &[&str],
) -> Result<Vec<f32>, ModelError> {
    let body = serde_json::json!({"model": model, "query": query, "documents": documents, "texts": documents, "top_n": documents.len()});
    let response = client.post("rerank", &body)?;
    let malformed = |what: &str| ModelError::Remote {
        url: client.url("rerank"),
        message: format!("malformed rerank response: {what}"),
    };
    let results = response
        .as_array()
        .or_else(|| response["results"].as_array())
        .ok_or_else(|| malformed("neither a list nor `results`"))?;
    let mut scores = vec![f32::NEG_INFINITY; documents.len()];
    for item in results {
        let index = item["index"]
            .as_u64()
            .ok_or_else(|| malformed("an item has no `index`"))? as usize;
        let score = item["relevance_score"]
            .as_f64()
            .or_else(|| item["score"].as_f64())
            .ok_or_else(|| malformed("an item has no score"))?;
        *scores
            .get_mut(index)
            .ok_or_else(|| malformed("an index out of range"))? = score as f32;
    }
    Ok(scores)
}
