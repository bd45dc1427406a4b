//! `weir produce`: one record per stdin line; exits 0 only when every record is acknowledged.
//! A reporter task awaits the acknowledgements as they come, so the first delivery error
//! is printed when it happens (a full disk, a dead broker), not after the input ends.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use weir_protocol::batch::RecordHeader;

use super::args::{OutputFormat, ProduceArgs};
use super::print_line;
use crate::config::{ClientConfig, ProducerConfig};
use crate::error::{Error, Result};
use crate::producer::{DeliveryFuture, Producer, ProducerRecord};

/// Futures awaited before reading on, so memory stays bounded for endless input.
const MAX_OUTSTANDING: usize = 100_000;

/// Splits a line (without its newline) into key and value per the flags.
pub fn split_line(
    line: &[u8],
    separator: Option<&[u8]>,
    empty_as_null: bool,
    line_no: u64,
) -> Result<(Option<Bytes>, Option<Bytes>)> {
    let (key, value) = match separator {
        None => (None, line),
        Some(sep) => {
            let at = line
                .windows(sep.len().max(1))
                .position(|w| w == sep)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "line {line_no} has no key separator {:?}; every line needs KEY{}VALUE",
                        String::from_utf8_lossy(sep),
                        String::from_utf8_lossy(sep)
                    ))
                })?;
            let (k, rest) = line.split_at(at);
            (
                Some(Bytes::copy_from_slice(k)),
                rest.get(sep.len()..).unwrap_or(&[]),
            )
        }
    };
    let value = if value.is_empty() && empty_as_null {
        None
    } else {
        Some(Bytes::copy_from_slice(value))
    };
    Ok((key, value))
}

/// What the reporter saw.
struct Delivered {
    failed: u64,
    first_error: Option<Error>,
}

/// Awaits acknowledgements in send order; prints the first failure at once.
async fn report(mut rx: mpsc::Receiver<DeliveryFuture>) -> Delivered {
    let mut seen = Delivered {
        failed: 0,
        first_error: None,
    };
    while let Some(f) = rx.recv().await {
        if let Err(e) = f.await {
            seen.failed += 1;
            if seen.first_error.is_none() {
                eprintln!("weir: delivery failed: {e}");
                seen.first_error = Some(e);
            }
        }
    }
    seen
}

pub(super) async fn run(
    mut config: ClientConfig,
    format: OutputFormat,
    args: ProduceArgs,
) -> Result<()> {
    if args.key_separator.as_deref() == Some("") {
        return Err(Error::Config("--key-separator must not be empty".into()));
    }
    if let Some(ms) = args.request_timeout_ms {
        config.request_timeout = Duration::from_millis(ms);
    }
    let defaults = ProducerConfig::default();
    let producer = Producer::new(
        config,
        ProducerConfig {
            acks: args.acks,
            compression: args.compression,
            linger: Duration::from_millis(5),
            delivery_timeout: args
                .delivery_timeout_ms
                .map_or(defaults.delivery_timeout, Duration::from_millis),
            ..defaults
        },
    )
    .await?;
    // Fail fast on a missing topic instead of after reading all of stdin.
    producer.client().topic(&args.topic).await?;
    let headers: Vec<RecordHeader> = args
        .headers
        .iter()
        .map(|(k, v)| RecordHeader {
            key: k.clone(),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
        })
        .collect();
    let sep = args.key_separator.as_deref().map(str::as_bytes);
    let mut stdin = BufReader::with_capacity(1 << 20, tokio::io::stdin());
    let mut line = Vec::with_capacity(256);
    // Bounded: reading waits when this many records are unacknowledged.
    let (tx, rx) = mpsc::channel::<DeliveryFuture>(MAX_OUTSTANDING);
    let reporter = tokio::spawn(report(rx));
    let mut sent: u64 = 0;
    let mut first_error: Option<Error> = None;
    let mut line_no = 0u64;
    loop {
        line.clear();
        let n = stdin
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| Error::Config(format!("cannot read stdin: {e}")))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        let (key, value) = match split_line(&line, sep, args.empty_as_null, line_no) {
            Ok(kv) => kv,
            Err(e) => {
                first_error.get_or_insert(e);
                break;
            }
        };
        let record = ProducerRecord {
            topic: args.topic.clone(),
            partition: args.partition,
            key,
            value,
            headers: headers.clone(),
            timestamp: None,
        };
        match producer.enqueue(record).await {
            Ok(f) => {
                if tx.send(f).await.is_err() {
                    break; // the reporter is gone (it panicked): stop reading
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
                break;
            }
        }
        sent += 1;
    }
    drop(tx);
    producer.flush().await;
    let delivered = reporter.await.unwrap_or(Delivered {
        failed: sent,
        first_error: Some(Error::Closed),
    });
    let failed = delivered.failed;
    // A delivery error happened first when there is one (reading stops only later).
    let first_error = delivered.first_error.or(first_error);
    producer.close().await;
    let acked = sent - failed;
    if format == OutputFormat::Json {
        let out = &mut std::io::stdout().lock();
        let v =
            json!({"topic": args.topic, "records": sent, "acknowledged": acked, "failed": failed});
        print_line(out, &v.to_string());
        let _ = out.flush();
    } else {
        eprintln!("produced {acked} of {sent} records to {}", args.topic);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_lines() {
        let (k, v) = split_line(b"a::b::c", Some(b"::"), false, 1).unwrap_or_default();
        assert_eq!(k.as_deref(), Some(&b"a"[..]));
        assert_eq!(v.as_deref(), Some(&b"b::c"[..]));
        let (k, v) = split_line(b"k:", Some(b":"), true, 1).unwrap_or_default();
        assert_eq!(k.as_deref(), Some(&b"k"[..]));
        assert_eq!(v, None);
        let (k, v) = split_line(b"", None, false, 1).unwrap_or_default();
        assert_eq!((k, v.as_deref()), (None, Some(&b""[..])));
        assert!(split_line(b"nokey", Some(b":"), false, 7)
            .err()
            .is_some_and(|e| e.to_string().contains("line 7")));
    }
}
