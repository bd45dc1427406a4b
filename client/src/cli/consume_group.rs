//! `weir consume TOPIC --group G`: consumes as a group member and commits exactly what it
//! printed (after each printed batch and on exit), then leaves the group so its partitions
//! move at once. Stops after `--max-messages`, after `--timeout-ms` without records, or on
//! Ctrl-C/SIGTERM. A commit that fails (the broker restarting, say) is retried with the
//! next one, for the partitions the member still owns.

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
    let mut owned = consumer.assignment();
    let mut result = Ok(());
    // Printed but not yet committed: next offset per partition.
    let mut pending: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    let mut commit_failing = false;
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
        // The idle clock restarts when partitions arrive: the join (which can take the
        // broker's initial rebalance delay) is not time "without new records".
        let now_owned = consumer.assignment();
        if consumer.is_rebalancing() {
            last_data = Instant::now(); // waiting for the group is not idleness
        }
        if now_owned != owned {
            owned = now_owned;
            last_data = Instant::now();
            // A partition that moved is re-read by its new owner from the last commit.
            pending.retain(|tp, _| owned.contains(tp));
        }
        if records.is_empty() {
            commit(&consumer, &mut pending, &mut commit_failing).await;
            continue;
        }
        last_data = Instant::now();
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
            pending.insert(r.topic_partition(), r.offset + 1);
            printed += 1;
            if printed >= max {
                break;
            }
        }
        let _ = out.flush();
        // Committed right after printing, so a stop or a revocation loses nothing.
        commit(&consumer, &mut pending, &mut commit_failing).await;
        if closed {
            break 'outer;
        }
    }
    let _ = out.flush();
    if !pending.is_empty() {
        commit_failing = false; // say it again if the last try fails too
        commit(&consumer, &mut pending, &mut commit_failing).await;
    }
    if let Err(e) = consumer.leave().await {
        eprintln!("weir: leaving group {group}: {e}");
    }
    eprintln!(
        "consumed {printed} records from {} in group {group}",
        args.topic
    );
    result
}

/// Commits `pending` and clears it on success. A failure is reported once per run of
/// failures and kept for the next try; the caller drops partitions that moved (their new
/// owner re-reads from the last successful commit: at-least-once).
async fn commit(
    consumer: &GroupConsumer,
    pending: &mut BTreeMap<TopicPartition, i64>,
    failing: &mut bool,
) {
    if pending.is_empty() {
        return;
    }
    let list: Vec<(TopicPartition, i64)> = pending.iter().map(|(k, v)| (k.clone(), *v)).collect();
    match consumer.commit_offsets(&list).await {
        Ok(()) => {
            pending.clear();
            if *failing {
                eprintln!("weir: commits succeed again");
            }
            *failing = false;
        }
        Err(e) => {
            if !*failing {
                eprintln!("weir: commit failed (retried with the next one): {e}");
            }
            *failing = true;
        }
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
