//! `weir consume`: prints records of all (or one) partitions until `--max-messages` or
//! `--timeout-ms` without new records.

use std::io::Write;
use std::time::{Duration, Instant};

use super::args::{ConsumeArgs, OutputFormat};
use super::output::{record_json, record_text};
use super::print_line;
use crate::config::{ClientConfig, ConsumerConfig, OffsetReset};
use crate::consumer::{Consumer, TopicPartition};
use crate::error::{Error, Result};

pub(super) async fn run(
    config: ClientConfig,
    format: OutputFormat,
    args: ConsumeArgs,
) -> Result<()> {
    let mut consumer = Consumer::new(
        config,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    )?;
    let meta = consumer.client().topic(&args.topic).await?;
    let tps: Vec<TopicPartition> = match args.partition {
        Some(p) if p < meta.partition_count() => vec![TopicPartition::new(args.topic.as_str(), p)],
        Some(p) => {
            return Err(Error::UnknownPartition {
                topic: args.topic,
                partition: p,
                count: meta.partition_count(),
            })
        }
        None => (0..meta.partition_count())
            .map(|p| TopicPartition::new(args.topic.as_str(), p))
            .collect(),
    };
    consumer.assign(&tps).await?;
    if args.from_beginning {
        consumer.seek_to_beginning(&tps)?;
    } else if let Some(o) = args.offset {
        for tp in &tps {
            consumer.seek(tp, o)?;
        }
    } else {
        consumer.seek_to_end(&tps)?;
    }
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let max = args.max_messages.unwrap_or(u64::MAX);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut printed = 0u64;
    let mut last_data = Instant::now();
    'outer: while printed < max {
        let wait = match idle_limit {
            Some(limit) => {
                let left = limit.saturating_sub(last_data.elapsed());
                if left.is_zero() {
                    break;
                }
                left.min(Duration::from_millis(500))
            }
            None => Duration::from_millis(500),
        };
        let records = consumer.poll(wait).await?;
        if records.is_empty() {
            continue;
        }
        last_data = Instant::now();
        for r in &records {
            let line = match format {
                OutputFormat::Json => record_json(r).to_string(),
                OutputFormat::Text => record_text(r),
            };
            if !print_line(&mut out, &line) {
                break 'outer; // stdout closed (e.g. `| head`)
            }
            printed += 1;
            if printed >= max {
                break 'outer;
            }
        }
        let _ = out.flush();
    }
    let _ = out.flush();
    eprintln!("consumed {printed} records from {}", args.topic);
    Ok(())
}
