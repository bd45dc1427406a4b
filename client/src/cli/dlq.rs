//! `weir dlq list|redrive TOPIC`: what the dead-letter helper (`crate::dlq`) parked for
//! TOPIC, and moving it back.

use serde_json::json;

use super::args::{DlqArgs, DlqCommand, OutputFormat};
use super::output::{record_json, record_text};
use super::print_line;
use crate::client::Client;
use crate::config::ClientConfig;
use crate::consumer::ConsumerRecord;
use crate::dlq::{self, Parked};
use crate::error::Result;

pub(super) async fn run(
    config: ClientConfig,
    format: OutputFormat,
    command: DlqCommand,
) -> Result<()> {
    let client = Client::new(config)?;
    let out = &mut std::io::stdout().lock();
    match command {
        DlqCommand::List(a) => {
            let dlq_topic = topic_of(&a);
            let records = dlq::list(client, &dlq_topic, max(&a)).await?;
            for r in &records {
                let line = match format {
                    OutputFormat::Json => parked_json(r).to_string(),
                    OutputFormat::Text => parked_text(r),
                };
                if !print_line(out, &line) {
                    break;
                }
            }
            if format == OutputFormat::Text {
                eprintln!("{} parked records in {dlq_topic}", records.len());
            }
        }
        DlqCommand::Redrive(a) => {
            let dlq_topic = topic_of(&a);
            let done = dlq::redrive(client, &dlq_topic, max(&a)).await?;
            let line = match format {
                OutputFormat::Json => json!({
                    "dlq_topic": dlq_topic,
                    "redriven": done.moved,
                    "remaining": done.remaining,
                })
                .to_string(),
                OutputFormat::Text => format!(
                    "redrove {} records from {dlq_topic}; {} still parked",
                    done.moved, done.remaining
                ),
            };
            print_line(out, &line);
        }
    }
    Ok(())
}

fn topic_of(a: &DlqArgs) -> String {
    a.dlq_topic
        .clone()
        .unwrap_or_else(|| dlq::dlq_topic(&a.topic))
}

fn max(a: &DlqArgs) -> usize {
    usize::try_from(a.max).unwrap_or(usize::MAX)
}

/// `PARTITION@OFFSET<TAB>FROM<TAB>attempts=N<TAB>error=E<TAB>` + the record as text.
fn parked_text(r: &ConsumerRecord) -> String {
    let record = record_text(r);
    match Parked::from_record(r) {
        Some(p) => format!(
            "{}@{}\t{}-{}@{}\tattempts={}\terror={}\t{record}",
            r.partition, r.offset, p.topic, p.partition, p.offset, p.attempts, p.error
        ),
        None => format!("{}@{}\t?\t\t\t{record}", r.partition, r.offset),
    }
}

/// The record's JSON plus `"parked": {error, attempts, topic, partition, offset,
/// timestamp}` (null when the record carries no `dlq.*` headers).
fn parked_json(r: &ConsumerRecord) -> serde_json::Value {
    let mut v = record_json(r);
    let parked = Parked::from_record(r).map(|p| {
        json!({
            "error": p.error,
            "attempts": p.attempts,
            "topic": p.topic,
            "partition": p.partition,
            "offset": p.offset,
            "timestamp": p.timestamp,
        })
    });
    if let Some(obj) = v.as_object_mut() {
        obj.insert("parked".into(), parked.unwrap_or(serde_json::Value::Null));
    }
    v
}
