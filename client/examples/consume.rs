//! Reads every partition of a topic from the beginning as a stream, without a group, and
//! stops after COUNT records or 5 s without new ones.
//!
//! ```text
//! cargo run -p weir-client --example consume -- [TOPIC] [COUNT]
//! ```
//! The broker address comes from `WEIR_BOOTSTRAP` (default `127.0.0.1:9292`).

use std::time::Duration;

use futures::StreamExt;
use weir_client::{ClientConfig, Consumer, ConsumerConfig, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "quickstart".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);
    let bootstrap = std::env::var("WEIR_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9292".into());

    let mut consumer = Consumer::new(ClientConfig::new(&bootstrap), ConsumerConfig::default())?;
    let partitions = consumer.assign_topic(&topic).await?;
    consumer.seek_to_beginning(&partitions)?;
    let mut records = consumer.stream();
    let mut seen = 0;
    while seen < count {
        // The stream is cancel-safe: a timed-out next() loses no record.
        let Ok(next) = tokio::time::timeout(Duration::from_secs(5), records.next()).await else {
            println!("no new records for 5 s");
            break;
        };
        let Some(record) = next else { break };
        let record = record?;
        let value = record
            .value
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        println!("{}@{}: {value}", record.topic_partition(), record.offset);
        seen += 1;
    }
    println!("consumed {seen} records from {topic}");
    Ok(())
}
