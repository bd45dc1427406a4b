//! `weir consume TOPIC --group G`: consumes as a group member and commits exactly what it
//! printed (after each printed batch and on exit), then leaves the group so its partitions
//! move at once. Stops after `--max-messages`, after `--timeout-ms` without records, or on
//! Ctrl-C/SIGTERM.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use super::args::{ConsumeArgs, OutputFormat};
use super::output::{record_json, record_text};
use super::print_line;
use crate::config::{ClientConfig, ConsumerConfig, OffsetReset};
use crate::consumer::{GroupConfig, GroupConsumer, TopicPartition};
use crate::error::Result;

pub(super) async fn run(
    config: ClientConfig,
    format: OutputFormat,
    args: ConsumeArgs,
) -> Result<()> {
    let group = args.group.clone().unwrap_or_default();
    let reset = if args.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    let mut gc = GroupConfig::new(&group);
    // Commits are explicit: exactly the printed records.
    gc.auto_commit_interval = None;
    gc.session_timeout = Duration::from_millis(args.session_timeout_ms);
    gc.heartbeat_interval =
        (gc.session_timeout / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut consumer = GroupConsumer::new(
        config,
        ConsumerConfig {
            auto_offset_reset: reset,
            ..ConsumerConfig::default()
        },
        gc,
    )
    .await?;
    consumer.subscribe(&[args.topic.as_str()]);

    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let max = args.max_messages.unwrap_or(u64::MAX);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut printed = 0u64;
    let mut last_data = Instant::now();
    let mut result = Ok(());
    let stop = stop_signal();
    tokio::pin!(stop);
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
        let records = tokio::select! {
            r = consumer.poll(wait) => r,
            () = &mut stop => break,
        };
        let records = match records {
            Ok(r) => r,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        if records.is_empty() {
            continue;
        }
        last_data = Instant::now();
        // Next offset to commit per partition: one past the last printed record.
        let mut pending: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let mut closed = false;
        for r in &records {
            let line = match format {
                OutputFormat::Json => record_json(r).to_string(),
                OutputFormat::Text => record_text(r),
            };
            if !print_line(&mut out, &line) {
                closed = true; // stdout closed (e.g. `| head`)
                break;
            }
            pending.insert((r.topic.to_string(), r.partition), r.offset + 1);
            printed += 1;
            if printed >= max {
                break;
            }
        }
        let _ = out.flush();
        // Committed right after printing, so a stop or a revocation loses nothing.
        commit(&consumer, &pending).await;
        if closed {
            break 'outer;
        }
    }
    let _ = out.flush();
    if let Err(e) = consumer.leave().await {
        eprintln!("weir: leaving group {group}: {e}");
    }
    eprintln!(
        "consumed {printed} records from {} in group {group}",
        args.topic
    );
    result
}

/// A failed commit (e.g. the partition just moved to another member) is reported, not
/// fatal: the next owner re-reads from the last successful commit (at-least-once).
async fn commit(consumer: &GroupConsumer, offsets: &BTreeMap<TopicPartition, i64>) {
    if offsets.is_empty() {
        return;
    }
    let list: Vec<(TopicPartition, i64)> = offsets.iter().map(|(k, v)| (k.clone(), *v)).collect();
    if let Err(e) = consumer.commit_offsets(&list).await {
        eprintln!("weir: commit failed: {e}");
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
