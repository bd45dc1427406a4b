//! Consumes a topic as a member of a consumer group and commits each record after
//! processing it (at-least-once), then leaves the group. Stops after COUNT records or 5 s
//! without new ones; start several to watch them share the partitions.
//!
//! ```text
//! cargo run -p weir-client --example consume_group -- [TOPIC] [GROUP] [COUNT]
//! ```
//! The broker address comes from `WEIR_BOOTSTRAP` (default `127.0.0.1:9292`).

use std::time::Duration;

use futures::StreamExt;
use weir_client::{ClientConfig, ConsumerConfig, Error, GroupConfig, GroupConsumer, OffsetReset};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "quickstart".into());
    let group = args.next().unwrap_or_else(|| "quickstart-group".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);
    let bootstrap = std::env::var("WEIR_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9292".into());

    let mut settings = GroupConfig::new(&group);
    settings.auto_commit_interval = None; // commit exactly what was processed, below
    let consumer_settings = ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest, // a new group starts at the beginning
        ..ConsumerConfig::default()
    };
    let mut consumer =
        GroupConsumer::new(ClientConfig::new(&bootstrap), consumer_settings, settings).await?;
    consumer.subscribe(&[topic.as_str()]);

    // The committer commits for this member while the stream borrows the consumer.
    let committer = consumer.committer();
    let mut seen = 0;
    let mut records = consumer.stream();
    while seen < count {
        // The first records wait for the group to form (a few seconds for a new group).
        let Ok(next) = tokio::time::timeout(Duration::from_secs(10), records.next()).await else {
            println!("no new records for 10 s");
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
        // Processed: commit it (the group resumes after it).
        committer.commit_record(&record).await?;
    }
    drop(records);
    // Shutdown order: stop reading, commit (done per record here), then leave the group so
    // the partitions move to the other members at once.
    consumer.close_timeout(Duration::from_secs(10)).await?;
    println!("consumed {seen} records from {topic} in group {group}");
    Ok(())
}
