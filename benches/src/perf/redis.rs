//! The Redis Streams driver: one connection per producer with XADD pipelined (a writer
//! keeps up to `WINDOW` commands outstanding while a reader task matches replies in order),
//! and XREAD for consumers. Partitions map to stream keys `<topic>-<n>`; record `i` of a
//! producer goes to key `i mod partitions`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::args::Args;
use super::collect::{Collected, CHUNK};
use super::error::{PerfError, Result};
use super::pace::{split, Pacer, Payloads};
use super::report::{new_histogram, record, Report};
use super::resp::{self, Frame};
use super::stamp;

/// Pipelined commands outstanding per connection, in chunks of [`CHUNK`].
const WINDOW_CHUNKS: usize = 32;
/// XREAD page size.
const READ_COUNT: &[u8] = b"10000";
const IDLE_END: Duration = Duration::from_secs(5);

/// Reading side of one connection.
struct Reader {
    rd: OwnedReadHalf,
    buf: BytesMut,
    /// When the bytes last read arrived: every reply in them shares this time.
    read_at: Instant,
}

impl Reader {
    /// The next complete reply, raw.
    async fn next(&mut self) -> Result<Bytes> {
        loop {
            match resp::frame_end(&self.buf, 0).map_err(PerfError::Redis)? {
                Some(end) => return Ok(self.buf.split_to(end).freeze()),
                None => {
                    self.buf.reserve(256 << 10);
                    let n = self
                        .rd
                        .read_buf(&mut self.buf)
                        .await
                        .map_err(PerfError::io("redis read"))?;
                    if n == 0 {
                        return Err(PerfError::Redis("connection closed".into()));
                    }
                    self.read_at = Instant::now();
                }
            }
        }
    }
}

async fn connect(addr: &str) -> Result<(Reader, OwnedWriteHalf)> {
    let s = TcpStream::connect(addr)
        .await
        .map_err(PerfError::io(format!("connect to redis at {addr}")))?;
    let _ = s.set_nodelay(true);
    let (rd, wr) = s.into_split();
    Ok((
        Reader {
            rd,
            buf: BytesMut::with_capacity(1 << 20),
            read_at: Instant::now(),
        },
        wr,
    ))
}

/// One request/response round trip.
async fn command(rd: &mut Reader, wr: &mut OwnedWriteHalf, args: &[&[u8]]) -> Result<Frame> {
    let mut out = BytesMut::new();
    resp::encode(&mut out, args);
    wr.write_all(&out)
        .await
        .map_err(PerfError::io("redis write"))?;
    let reply = resp::decode(&rd.next().await?).map_err(PerfError::Redis)?;
    if let Frame::Error(e) = &reply {
        return Err(PerfError::Redis(String::from_utf8_lossy(e).into_owned()));
    }
    Ok(reply)
}

fn keys(args: &Args) -> Vec<String> {
    (0..args.partitions)
        .map(|p| format!("{}-{p}", args.topic))
        .collect()
}

/// Counts replies of one connection's pipelined XADDs.
async fn read_acks(mut rd: Reader, mut rx: mpsc::Receiver<Vec<Instant>>) -> Result<Collected> {
    let mut c = Collected {
        latency: new_histogram(),
        ok: 0,
        errors: 0,
        first_error: None,
        last: None,
    };
    while let Some(dues) = rx.recv().await {
        for due in dues {
            let reply = rd.next().await?;
            if resp::is_error(&reply) {
                c.errors += 1;
                c.first_error
                    .get_or_insert_with(|| String::from_utf8_lossy(&reply).trim().to_owned());
            } else {
                c.ok += 1;
                let us = rd.read_at.saturating_duration_since(due).as_micros() as u64;
                record(&mut c.latency, us);
            }
            c.last = Some(rd.read_at);
        }
    }
    Ok(c)
}

async fn run_producers(args: &Args, stamped: bool) -> Result<(Collected, Instant)> {
    let payloads = Arc::new(Payloads::new(args.record_size));
    let keys = Arc::new(keys(args));
    let rate = args.rate.map(|r| r / args.producers as f64);
    let mut conns = Vec::new();
    for _ in 0..args.producers {
        conns.push(connect(&args.bootstrap).await?);
    }
    let start = Instant::now();
    let deadline = start + args.time_limit();
    let mut tasks = Vec::new();
    for (n, ((rd, mut wr), share)) in conns
        .into_iter()
        .zip(split(args.records, args.producers))
        .enumerate()
    {
        let (tx, rx) = mpsc::channel::<Vec<Instant>>(WINDOW_CHUNKS);
        let reader = tokio::spawn(read_acks(rd, rx));
        let payloads = payloads.clone();
        let keys = keys.clone();
        let offset = rate.map_or(Duration::ZERO, |r| {
            Duration::from_secs_f64(n as f64 / (r * args.producers as f64))
        });
        tasks.push(tokio::spawn(async move {
            let mut pacer = Pacer::new(start + offset, rate);
            let mut out = BytesMut::with_capacity(CHUNK * (payloads.size() + 64));
            let mut dues = Vec::with_capacity(CHUNK);
            let mut i = 0u64;
            while i < share {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                // Fill a chunk with what is due (everything, when unpaced).
                while i < share && dues.len() < CHUNK && pacer.wait(now).is_zero() {
                    let due = pacer.next(now);
                    let value = if stamped {
                        payloads.stamped(i, due)
                    } else {
                        payloads.get(i)
                    };
                    let key = keys.get(i as usize % keys.len().max(1)).map_or("", |k| k);
                    resp::encode(&mut out, &[b"XADD", key.as_bytes(), b"*", b"v", &value]);
                    dues.push(due);
                    i += 1;
                }
                if !dues.is_empty() {
                    // Reserve the window slot first so at most WINDOW_CHUNKS are unanswered.
                    if tx.send(std::mem::take(&mut dues)).await.is_err() {
                        break;
                    }
                    wr.write_all(&out)
                        .await
                        .map_err(PerfError::io("redis write"))?;
                    out.clear();
                }
                let wait = pacer.wait(Instant::now());
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            drop(tx);
            let c = reader
                .await
                .map_err(|e| PerfError::Redis(format!("reader task: {e}")))??;
            Ok::<_, PerfError>(c)
        }));
    }
    let mut total: Option<Collected> = None;
    for t in tasks {
        let c = t
            .await
            .map_err(|e| PerfError::Redis(format!("producer task: {e}")))??;
        match &mut total {
            Some(t) => t.merge(c),
            None => total = Some(c),
        }
    }
    Ok((
        total.ok_or_else(|| PerfError::Config("no producers".into()))?,
        start,
    ))
}

/// `produce`: pipelined XADD; latency = intended send to reply.
pub async fn produce(args: &Args, report: &mut Report) -> Result<()> {
    let (c, start) = run_producers(args, false).await?;
    report.records = c.ok;
    report.bytes = c.ok * args.record_size as u64;
    report.seconds = c.last.unwrap_or(start).duration_since(start).as_secs_f64();
    report.errors = c.errors;
    report.latency = c.latency;
    if let Some(e) = c.first_error {
        report.extra.insert("first_error".into(), e.into());
    }
    Ok(())
}

/// Walks an XREAD reply: per entry calls `f(value)`; moves each key's last id on.
fn for_each_entry(reply: &Frame, last_ids: &mut [(String, Bytes)], mut f: impl FnMut(&[u8])) {
    for stream in reply.items().unwrap_or_default() {
        let parts = stream.items().unwrap_or_default();
        let Some(key) = parts.first().and_then(Frame::as_bytes) else {
            continue;
        };
        let entries = parts.get(1).and_then(Frame::items).unwrap_or_default();
        let slot = last_ids.iter_mut().find(|(k, _)| k.as_bytes() == &key[..]);
        let mut last = None;
        for e in entries {
            let e = e.items().unwrap_or_default();
            last = e.first().and_then(Frame::as_bytes).cloned().or(last);
            let fields = e.get(1).and_then(Frame::items).unwrap_or_default();
            if let Some(v) = fields.get(1).and_then(Frame::as_bytes) {
                f(v);
            }
        }
        if let (Some((_, id)), Some(l)) = (slot, last) {
            *id = l;
        }
    }
}

async fn read_loop(
    args: &Args,
    report: &mut Report,
    from: &[u8],
    block: bool,
    done: impl Fn() -> bool,
) -> Result<()> {
    let (mut rd, mut wr) = connect(&args.bootstrap).await?;
    let mut last_ids: Vec<(String, Bytes)> = keys(args)
        .into_iter()
        .map(|k| (k, Bytes::copy_from_slice(from)))
        .collect();
    let start = Instant::now();
    let deadline = start + args.time_limit() + if block { IDLE_END } else { Duration::ZERO };
    let mut last = start;
    while report.records < args.records {
        let now = Instant::now();
        if now >= deadline || (now.duration_since(last) >= IDLE_END && done()) {
            break;
        }
        let mut cmd: Vec<&[u8]> = vec![b"XREAD", b"COUNT", READ_COUNT];
        if block {
            cmd.extend([&b"BLOCK"[..], b"100"]);
        }
        cmd.push(b"STREAMS");
        cmd.extend(last_ids.iter().map(|(k, _)| k.as_bytes()));
        let ids: Vec<Bytes> = last_ids.iter().map(|(_, id)| id.clone()).collect();
        cmd.extend(ids.iter().map(|b| &b[..]));
        let reply = command(&mut rd, &mut wr, &cmd).await?;
        let received = rd.read_at;
        let mut n = 0u64;
        let mut bytes = 0u64;
        let lat = &mut report.latency;
        for_each_entry(&reply, &mut last_ids, |v| {
            n += 1;
            bytes += v.len() as u64;
            if block {
                if let Some(s) = stamp::read(v) {
                    record(lat, stamp::age_micros(s, received));
                }
            }
        });
        if n == 0 {
            if !block {
                // Without BLOCK an empty reply means the streams are read to the end.
                break;
            }
            continue;
        }
        if !block {
            record(lat, received.duration_since(now).as_micros() as u64);
        }
        last = received;
        report.records += n;
        report.bytes += bytes;
    }
    report.seconds = last.duration_since(start).as_secs_f64();
    Ok(())
}

/// `consume`: XREAD pages of 10,000 from the start of every key.
pub async fn consume(args: &Args, report: &mut Report) -> Result<()> {
    read_loop(args, report, b"0-0", false, || true).await
}

/// `end-to-end`: fresh keys, a blocking XREAD reader, paced stamped XADDs.
pub async fn end_to_end(args: &Args, report: &mut Report) -> Result<()> {
    {
        let (mut rd, mut wr) = connect(&args.bootstrap).await?;
        let keys = keys(args);
        let mut del: Vec<&[u8]> = vec![b"DEL"];
        del.extend(keys.iter().map(|k| k.as_bytes()));
        command(&mut rd, &mut wr, &del).await?;
    }
    let args2 = args.clone();
    let producers = tokio::spawn(async move { run_producers(&args2, true).await });
    let finished = || producers.is_finished();
    read_loop(args, report, b"0-0", true, finished).await?;
    let (acks, _) = producers
        .await
        .map_err(|e| PerfError::Redis(format!("producers: {e}")))??;
    report.errors = acks.errors;
    report.extra.insert(
        "produce_p99_ms".into(),
        (acks.latency.value_at_quantile(0.99) as f64 / 1000.0).into(),
    );
    Ok(())
}
