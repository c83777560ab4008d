//! The one retry policy every remote call uses (Milvus upserts, deletes and
//! lookups; remote embedders and rerankers): transient failures are retried
//! with jittered exponential backoff (backon), a server's `Retry-After` is
//! honoured, and `max_retries` means the same everywhere: how many retries
//! after the first try (`None`: until it succeeds or the process stops).

use std::time::Duration;

use backon::{BlockingRetryable, ExponentialBuilder};

/// What a failed call says about trying again.
pub(crate) trait Transient {
    /// Worth another try: unavailable, deadline, 429, 5xx, transport.
    fn is_transient(&self) -> bool;
    /// How long the server asked to be left alone, when it said.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub max_retries: Option<usize>,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Milvus: from 0.5 s up to 30 s between tries.
    pub(crate) fn milvus(max_retries: Option<usize>) -> Self {
        RetryPolicy {
            max_retries,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }

    /// A Schema Registry: from 0.5 s up to 10 s between tries (a stop is
    /// noticed at the next), until it answers (records wait for their
    /// schema; none is dead-lettered).
    pub(crate) fn registry() -> Self {
        RetryPolicy {
            max_retries: None,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
        }
    }

    /// Model and rerank services: from 0.2 s up to 10 s between tries.
    pub(crate) fn http(max_retries: usize) -> Self {
        RetryPolicy {
            max_retries: Some(max_retries),
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }

    /// Runs `call` until it succeeds, fails for good, or has been retried
    /// `max_retries` times; `on_retry` hears of each transient failure and
    /// the wait after it. Blocks (call off the async threads).
    pub(crate) fn run<T, E: Transient>(
        &self,
        mut on_retry: impl FnMut(&E, Duration),
        call: impl FnMut() -> Result<T, E>,
    ) -> Result<T, E> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_jitter();
        let backoff = match self.max_retries {
            Some(times) => backoff.with_max_times(times),
            None => backoff.without_max_times(),
        };
        call.retry(backoff)
            .sleep(std::thread::sleep)
            .when(E::is_transient)
            .notify(|e: &E, delay| {
                // The backoff's own wait follows; a longer Retry-After is made up here.
                let asked = e.retry_after().unwrap_or_default();
                on_retry(e, delay.max(asked));
                if asked > delay {
                    std::thread::sleep(asked - delay);
                }
            })
            .call()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[derive(Debug)]
    struct Failure {
        transient: bool,
        after: Option<Duration>,
    }

    impl Transient for Failure {
        fn is_transient(&self) -> bool {
            self.transient
        }
        fn retry_after(&self) -> Option<Duration> {
            self.after
        }
    }

    fn quick(max_retries: Option<usize>) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[test]
    fn transient_failures_are_retried_max_retries_times_then_returned() {
        let mut tries = 0;
        let outcome: Result<(), Failure> = quick(Some(3)).run(
            |_, _| {},
            || {
                tries += 1;
                Err(Failure {
                    transient: true,
                    after: None,
                })
            },
        );
        assert!(outcome.is_err());
        assert_eq!(tries, 4, "the first try and three retries");
    }

    #[test]
    fn a_lasting_failure_is_not_retried_and_success_ends_the_tries() {
        let mut tries = 0;
        let outcome: Result<(), Failure> = quick(None).run(
            |_, _| {},
            || {
                tries += 1;
                Err(Failure {
                    transient: false,
                    after: None,
                })
            },
        );
        assert!(outcome.is_err());
        assert_eq!(tries, 1);
        let mut tries = 0;
        let outcome = quick(None).run(
            |_: &Failure, _| {},
            || {
                tries += 1;
                if tries < 5 {
                    Err(Failure {
                        transient: true,
                        after: None,
                    })
                } else {
                    Ok(tries)
                }
            },
        );
        assert_eq!(outcome.unwrap(), 5, "no limit: until it succeeds");
    }

    #[test]
    fn retry_after_is_waited_out_when_longer_than_the_backoff() {
        let started = Instant::now();
        let mut heard = Vec::new();
        let mut tries = 0;
        let _ = quick(Some(1)).run(
            |_: &Failure, wait| heard.push(wait),
            || {
                tries += 1;
                Err::<(), _>(Failure {
                    transient: true,
                    after: Some(Duration::from_millis(300)),
                })
            },
        );
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(heard, [Duration::from_millis(300)]);
    }
}
