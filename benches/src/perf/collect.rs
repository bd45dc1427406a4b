//! Acknowledgement collection: producers hand (intended send time, ack future) pairs over
//! in chunks; a collector task awaits them in send order and records each latency when
//! its ack resolves. Awaiting in order is exact for one partition (acks arrive in order)
//! and, across partitions, at most delays a measurement until earlier sends are acked.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Instant;

use futures::FutureExt;
use hdrhistogram::Histogram;
use tokio::sync::mpsc;

use super::report::{new_histogram, record};

/// Pairs a producer sends at once: big enough to amortise the channel, small enough that
/// a chunk waiting to be sent does not distort latency (paced producers flush early).
pub const CHUNK: usize = 256;

/// What a collector saw.
#[derive(Debug)]
pub struct Collected {
    /// Send-to-ack latency in microseconds.
    pub latency: Histogram<u64>,
    /// Acknowledged records.
    pub ok: u64,
    /// Failed records.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// When the last ack arrived.
    pub last: Option<Instant>,
}

impl Collected {
    fn new() -> Self {
        Collected {
            latency: new_histogram(),
            ok: 0,
            errors: 0,
            first_error: None,
            last: None,
        }
    }

    fn note<T, E: std::fmt::Display>(&mut self, due: Instant, now: Instant, r: Result<T, E>) {
        match r {
            Ok(_) => {
                self.ok += 1;
                record(
                    &mut self.latency,
                    now.saturating_duration_since(due).as_micros() as u64,
                );
            }
            Err(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(e.to_string());
                }
            }
        }
        self.last = Some(now);
    }

    /// Folds `other` into `self`.
    pub fn merge(&mut self, other: Collected) {
        let _ = self.latency.add(&other.latency);
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.last = self.last.max(other.last);
    }
}

/// Sending side of a collector.
pub type ChunkSender<F> = mpsc::Sender<Vec<(Instant, F)>>;

/// Starts a collector; it ends once the sender is dropped and every future resolved.
pub fn spawn<F, T, E>() -> (ChunkSender<F>, tokio::task::JoinHandle<Collected>)
where
    F: Future<Output = Result<T, E>> + Unpin + Send + 'static,
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    (tx, tokio::spawn(run(rx)))
}

async fn run<F, T, E>(mut rx: mpsc::Receiver<Vec<(Instant, F)>>) -> Collected
where
    F: Future<Output = Result<T, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut out = Collected::new();
    let mut queue: VecDeque<(Instant, F)> = VecDeque::new();
    let mut open = true;
    loop {
        let Some((due, mut cur)) = queue.pop_front() else {
            if !open {
                return out;
            }
            match rx.recv().await {
                Some(c) => queue.extend(c),
                None => open = false,
            }
            continue;
        };
        let r = loop {
            tokio::select! {
                r = &mut cur => break r,
                c = rx.recv(), if open => match c {
                    Some(c) => queue.extend(c),
                    None => open = false,
                },
            }
        };
        let now = Instant::now();
        out.note(due, now, r);
        // Acks of one response resolve together: take them with the same clock reading.
        while let Some((due, f)) = queue.front_mut() {
            let Some(r) = f.now_or_never() else { break };
            let due = *due;
            queue.pop_front();
            out.note(due, now, r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn collects_in_order_and_counts_errors() {
        let (tx, handle) = spawn::<futures::future::Ready<Result<u8, String>>, u8, String>();
        let t0 = Instant::now() - Duration::from_millis(2);
        let chunk = vec![
            (t0, futures::future::ready(Ok(1))),
            (t0, futures::future::ready(Err("boom".to_owned()))),
            (t0, futures::future::ready(Ok(2))),
        ];
        assert!(tx.send(chunk).await.is_ok());
        drop(tx);
        let c = handle.await.unwrap_or_else(|_| Collected::new());
        assert_eq!((c.ok, c.errors), (2, 1));
        assert_eq!(c.first_error.as_deref(), Some("boom"));
        assert!(c.latency.min() >= 2000);
    }
}
