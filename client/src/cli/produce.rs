//! `weir produce`: one record per stdin line; exits 0 only when every record is acknowledged.

use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
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

pub(super) async fn run(
    config: ClientConfig,
    format: OutputFormat,
    args: ProduceArgs,
) -> Result<()> {
    if args.key_separator.as_deref() == Some("") {
        return Err(Error::Config("--key-separator must not be empty".into()));
    }
    let producer = Producer::new(
        config,
        ProducerConfig {
            acks: args.acks,
            compression: args.compression,
            linger: Duration::from_millis(5),
            ..ProducerConfig::default()
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
    let mut outstanding: VecDeque<DeliveryFuture> = VecDeque::new();
    let mut sent: u64 = 0;
    let mut first_error: Option<Error> = None;
    let mut failed = 0u64;
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
            Ok(f) => outstanding.push_back(f),
            Err(e) => {
                first_error.get_or_insert(e);
                break;
            }
        }
        sent += 1;
        if outstanding.len() >= MAX_OUTSTANDING {
            if let Some(f) = outstanding.pop_front() {
                if let Err(e) = f.await {
                    failed += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    producer.flush().await;
    for f in outstanding {
        if let Err(e) = f.await {
            failed += 1;
            first_error.get_or_insert(e);
        }
    }
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
