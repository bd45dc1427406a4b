//! Retries and dead letters: [`DeadLetters::process`] runs a handler on a record, retries
//! it with exponential backoff when it fails, and after the last try writes the record to
//! a dead-letter topic (`<topic>.dlq` by default) with headers naming the error, the
//! attempt count and where it came from (`policy.rs`), so the caller can commit past it.
//! [`redrive`] moves parked records back to their topic (the `weir dlq` commands use it).
//!
//! - `policy.rs`: backoff and the `dlq.*` headers (pure).
//! - `redrive.rs`: reading a dead-letter topic back, listing and re-producing.

mod policy;
mod redrive;

use std::future::Future;

pub use policy::{dlq_topic, header, Parked, RetryPolicy};
pub use redrive::{list, redrive, Redriven, REDRIVE_GROUP_PREFIX};

use crate::admin::{Admin, NewTopic};
use crate::consumer::ConsumerRecord;
use crate::error::{Error, Result};
use crate::producer::{Producer, ProducerRecord};

/// What happened to a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler succeeded, after this many tries.
    Handled {
        /// Tries (1 = at the first).
        attempts: u32,
    },
    /// Every try failed; the record is in the dead-letter topic (acknowledged).
    Parked {
        /// The dead-letter topic.
        topic: String,
        /// The last error.
        error: String,
    },
}

/// Retries a handler and parks what keeps failing.
///
/// ```no_run
/// # async fn demo(mut consumer: weir_client::GroupConsumer, producer: weir_client::Producer) -> weir_client::Result<()> {
/// use futures::StreamExt;
/// use weir_client::dlq::{DeadLetters, RetryPolicy};
/// let dead_letters = DeadLetters::new(producer, RetryPolicy::default());
/// let committer = consumer.committer();
/// let mut records = consumer.stream();
/// while let Some(record) = records.next().await {
///     let record = record?;
///     dead_letters
///         .process(&record, |r| {
///             let ok = r.value.is_some();
///             async move { if ok { Ok(()) } else { Err("empty value") } }
///         })
///         .await?;
///     committer.commit_record(&record).await?; // handled or parked: move past it
/// }
/// # Ok(())
/// # }
/// ```
pub struct DeadLetters {
    producer: Producer,
    policy: RetryPolicy,
    topic_for: Box<dyn Fn(&str) -> String + Send + Sync>,
}

impl DeadLetters {
    /// Parks into `<topic>.dlq` through `producer` (keep it idempotent with acks=all, the
    /// default, so a parked record is neither lost nor doubled by retries).
    pub fn new(producer: Producer, policy: RetryPolicy) -> DeadLetters {
        DeadLetters {
            producer,
            policy,
            topic_for: Box::new(dlq_topic),
        }
    }

    /// Parks into `name(topic)` instead of `<topic>.dlq`.
    pub fn with_topic_name(
        mut self,
        name: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Self {
        self.topic_for = Box::new(name);
        self
    }

    /// Runs `handler` on `record` up to `max_attempts` times with backoff in between; when
    /// every try failed, writes the record to the dead-letter topic (created with the
    /// broker's default partition count if missing) and waits for the acknowledgement.
    /// `Ok` means the caller may commit past the record; `Err` means parking failed and
    /// the record must not be committed.
    ///
    /// Cancellation safety: not safe to drop while parking (the record may or may not be
    /// parked); the handler may run again on the next delivery, as with any
    /// at-least-once consumer.
    pub async fn process<F, Fut, E>(
        &self,
        record: &ConsumerRecord,
        mut handler: F,
    ) -> Result<Outcome>
    where
        F: FnMut(&ConsumerRecord) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
        E: std::fmt::Display,
    {
        let attempts = self.policy.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            match handler(record).await {
                Ok(()) => return Ok(Outcome::Handled { attempts: attempt }),
                Err(e) => last = e.to_string(),
            }
            if attempt < attempts {
                tokio::time::sleep(self.policy.backoff(attempt)).await;
            }
        }
        let topic = (self.topic_for)(&record.topic);
        self.park(record, &topic, &last, attempts).await?;
        Ok(Outcome::Parked { topic, error: last })
    }

    async fn park(
        &self,
        record: &ConsumerRecord,
        topic: &str,
        error: &str,
        attempts: u32,
    ) -> Result<()> {
        let parked = ProducerRecord {
            topic: topic.to_owned(),
            partition: None,
            key: record.key.clone(),
            value: record.value.clone(),
            headers: policy::parked_headers(record, error, attempts),
            timestamp: Some(record.timestamp),
        };
        let delivery = match self.producer.enqueue(parked.clone()).await {
            Err(Error::UnknownTopic(_)) => {
                let admin = Admin::with_client(self.producer.client().clone());
                match admin
                    .create_topic(NewTopic::with_default_partitions(topic))
                    .await
                {
                    Ok(_) => {}
                    // Created meanwhile by another consumer: fine.
                    Err(e) if e.code() == Some(weir_protocol::ErrorCode::TopicAlreadyExists) => {}
                    Err(e) => return Err(e),
                }
                self.producer.enqueue(parked).await?
            }
            other => other?,
        };
        self.producer.flush().await;
        delivery.await.map(|_| ())
    }
}
