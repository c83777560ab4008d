//! What the Kafka source and the Kafka dead-letter output share: the
//! librdkafka settings of `options` (kept out of every printed form where
//! they are secrets), and the refusals a secured cluster answers with — a
//! failed authentication or TLS handshake — which no retry can fix.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde::Deserialize;

/// librdkafka settings (`security.protocol`, `sasl.*`, `ssl.*`, …), as given.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub(crate) struct KafkaOptions(BTreeMap<String, String>);

impl KafkaOptions {
    /// Sets each option on a client configuration.
    pub(crate) fn apply(&self, client: &mut ClientConfig) {
        for (key, value) in &self.0 {
            client.set(key, value);
        }
    }
}

/// Settings whose value is a secret: passwords, client secrets, private keys
/// and the JAAS/OAuth configuration strings that embed them.
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.ends_with(".key.pem")
        || key == "sasl.jaas.config"
        || key == "sasl.oauthbearer.config"
}

/// The options with every secret value replaced, so that a debug print of a
/// configuration never shows one.
impl fmt::Debug for KafkaOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(key, value)| {
                let shown = if is_secret(key) { "<redacted>" } else { value };
                (key, shown)
            }))
            .finish()
    }
}

/// A cluster's answer that retrying cannot change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// SASL: a wrong user or password, or a mechanism the broker lacks.
    Authentication,
    /// TLS: the broker's certificate is not trusted (or the port speaks no TLS).
    Tls,
}

impl Refusal {
    /// Which refusal a librdkafka error code is, if it is one.
    pub(crate) fn of_code(code: RDKafkaErrorCode) -> Option<Refusal> {
        match code {
            RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
                Some(Refusal::Authentication)
            }
            RDKafkaErrorCode::SSL => Some(Refusal::Tls),
            _ => None,
        }
    }

    /// Which refusal an error is, if it is one.
    pub(crate) fn of(error: &KafkaError) -> Option<Refusal> {
        error.rdkafka_error_code().and_then(Refusal::of_code)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Authentication => {
                "authentication failed (check `sasl.mechanism`, `sasl.username` and the password in `options`)"
            }
            Refusal::Tls => {
                "TLS handshake failed (check `ssl.ca.location`: the CA that signed the brokers' certificates)"
            }
        })
    }
}

/// The brokers refused the connection; `reason` is librdkafka's, without its
/// connection prefix and timing.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{refusal}: {reason}")]
pub struct Refused {
    pub refusal: Refusal,
    pub reason: String,
}

/// The last refusal librdkafka reported through a client context's error
/// callback (the poll and metadata calls return only the code).
#[derive(Default)]
pub(crate) struct Refusals(Mutex<Option<Refused>>);

impl Refusals {
    /// Keeps `error` when it is a refusal.
    pub(crate) fn note(&self, error: &KafkaError, reason: &str) {
        if let Some(refusal) = Refusal::of(error) {
            let refused = Refused {
                refusal,
                reason: plain_reason(reason),
            };
            *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(refused);
        }
    }

    /// The last refusal, if any.
    pub(crate) fn last(&self) -> Option<Refused> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// librdkafka's reason without the `proto://host:port/id: ` it starts with
/// (the error names the brokers already) and the `(after 3ms in state …)` it
/// ends with (which differs on every attempt).
fn plain_reason(reason: &str) -> String {
    let mut text = reason.trim();
    if let Some((head, rest)) = text.split_once(": ")
        && head.contains("://")
        && !head.contains(' ')
    {
        text = rest;
    }
    if let Some(start) = text.rfind(" (after ")
        && text.ends_with(')')
    {
        text = &text[..start];
    }
    text.to_string()
}

impl crate::config::RelativePaths for KafkaOptions {
    /// librdkafka's file settings (`ssl.ca.location`, `ssl.certificate.location`,
    /// `ssl.key.location`, …, `sasl.kerberos.keytab`); `probe` is not a file.
    fn rebase(&mut self, base: &std::path::Path) {
        for (key, value) in &mut self.0 {
            let is_file = key.ends_with(".location") || key == "sasl.kerberos.keytab";
            if is_file && value != "probe" {
                crate::config::rebase_text(base, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_from_the_debug_form() {
        let options: KafkaOptions = serde_json::from_str(
            r#"{"security.protocol": "SASL_SSL", "sasl.username": "alice",
                "sasl.password": "hunter2", "sasl.oauthbearer.client.secret": "s3",
                "ssl.key.password": "k", "sasl.jaas.config": "password=\"j\""}"#,
        )
        .unwrap();
        assert_eq!(
            format!("{options:?}"),
            r#"{"sasl.jaas.config": "<redacted>", "sasl.oauthbearer.client.secret": "<redacted>", "sasl.password": "<redacted>", "sasl.username": "alice", "security.protocol": "SASL_SSL", "ssl.key.password": "<redacted>"}"#
        );
    }

    #[test]
    fn a_reason_loses_its_connection_prefix_and_timing() {
        assert_eq!(
            plain_reason(
                "sasl_ssl://127.0.0.1:4000/bootstrap: SASL authentication error: Authentication failed (after 5ms in state AUTH_REQ, 1 identical error(s) suppressed)"
            ),
            "SASL authentication error: Authentication failed"
        );
        assert_eq!(plain_reason("no prefix: here"), "no prefix: here");
    }

    #[test]
    fn codes_are_sorted_into_refusals() {
        use RDKafkaErrorCode as C;
        assert_eq!(
            Refusal::of_code(C::Authentication),
            Some(Refusal::Authentication)
        );
        assert_eq!(
            Refusal::of_code(C::SaslAuthenticationFailed),
            Some(Refusal::Authentication)
        );
        assert_eq!(Refusal::of_code(C::SSL), Some(Refusal::Tls));
        assert_eq!(Refusal::of_code(C::BrokerTransportFailure), None);
    }
}
