//! Produces keyed records to a topic, creating it first if needed, and waits until every
//! record is acknowledged.
//!
//! ```text
//! cargo run -p weir-client --example produce -- [TOPIC] [COUNT]
//! ```
//! The broker address comes from `WEIR_BOOTSTRAP` (default `127.0.0.1:9292`, the address
//! of `weir-broker` started without options).

use std::time::Duration;

use weir_client::admin::NewTopic;
use weir_client::{
    Admin, ClientConfig, Error, ErrorCode, Producer, ProducerConfig, ProducerRecord,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "quickstart".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);
    let bootstrap = std::env::var("WEIR_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9292".into());

    let admin = Admin::new(ClientConfig::new(&bootstrap))?;
    match admin.create_topic(NewTopic::new(&topic, 3)).await {
        Ok(created) => println!(
            "created topic {} ({} partitions)",
            created.name, created.partitions
        ),
        Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => {}
        Err(e) => return Err(e),
    }

    let producer = Producer::new(ClientConfig::new(&bootstrap), ProducerConfig::default()).await?;
    // enqueue() returns at once with a future for the acknowledgement: send many, then wait.
    let mut deliveries = Vec::with_capacity(count);
    for i in 0..count {
        let record = ProducerRecord::new(&topic, format!("order {i}"))
            .with_key(format!("customer-{}", i % 4));
        deliveries.push(producer.enqueue(record).await?);
    }
    producer.flush_timeout(Duration::from_secs(30)).await?;
    for d in deliveries {
        let meta = d.await?;
        println!("acknowledged {}-{}@{}", topic, meta.partition, meta.offset);
    }
    producer.close_timeout(Duration::from_secs(10)).await?;
    println!("produced {count} records to {topic}");
    Ok(())
}
