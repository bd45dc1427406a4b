//! The operation history: every client operation as invoke, then ok / fail / info (Jepsen's
//! vocabulary), and every record a consumer saw as one `ok` poll event. Kept in memory
//! for the checker and written as JSONL as it happens, so a run that dies still leaves
//! its history behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Outcome class of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The operation started.
    Invoke,
    /// It succeeded (sends: acknowledged at `offset`).
    Ok,
    /// It definitely did not happen (a non-retriable error code).
    Fail,
    /// Unknown outcome (timeout, connection lost, retriable error at the end).
    Info,
}

/// Which operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Func {
    /// A produce of one value.
    Send,
    /// One record a consumer received.
    Poll,
    /// A consumer moved its position of `partition` to `offset`.
    Seek,
    /// A group member committed `offset` (the next offset to read) for `partition`.
    Commit,
    /// An OffsetFetch of the group's committed offset for `partition`.
    Committed,
}

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Microseconds since the workload started (monotonic clock).
    pub t_us: u64,
    /// Who: `p0` (producer), `c1` (assign consumer), `g2.5` (group member 2, 5th start),
    /// `admin`.
    pub process: String,
    /// invoke / ok / fail / info.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// What.
    pub f: Func,
    /// Pairs an invoke with its completion (unique per run; 0 for poll and seek events).
    pub id: u64,
    /// Partition of the topic under test.
    pub partition: i32,
    /// The record value (sends and polls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Offset: acknowledged (send ok), read (poll), sought, committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// Error text or code of fail and info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

struct Inner {
    events: Vec<Event>,
    next_id: u64,
    out: Option<BufWriter<File>>,
}

/// Records events from every task (cheap to clone).
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    inner: Arc<Mutex<Inner>>,
}

impl Recorder {
    /// A recorder writing JSONL to `path` (`None`: memory only, for tests).
    pub fn new(path: Option<&Path>) -> std::io::Result<Recorder> {
        let out = match path {
            Some(p) => Some(BufWriter::new(File::create(p)?)),
            None => None,
        };
        Ok(Recorder {
            start: Instant::now(),
            inner: Arc::new(Mutex::new(Inner {
                events: Vec::new(),
                next_id: 1,
                out,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking task cannot leave the vector half-pushed; keep recording.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Microseconds since the start.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Records `e` with the current time (taken under the lock, so times never go back
    /// in the history); returns the id given (a fresh one when `e.id` is 0 and it is an
    /// invoke).
    pub fn record(&self, mut e: Event) -> u64 {
        let mut g = self.lock();
        e.t_us = self.now_us();
        if e.kind == Kind::Invoke && e.id == 0 {
            e.id = g.next_id;
            g.next_id += 1;
        }
        let id = e.id;
        if let Some(out) = g.out.as_mut() {
            // The history file is evidence, not a control path: a failed write is
            // reported once at the end (flush), the run goes on.
            if serde_json::to_writer(&mut *out, &e).is_ok() {
                let _ = out.write_all(b"\n");
            }
        }
        g.events.push(e);
        id
    }

    /// Starts an operation; returns its id.
    pub fn invoke(
        &self,
        process: &str,
        f: Func,
        partition: i32,
        value: Option<String>,
        offset: Option<i64>,
    ) -> u64 {
        self.record(Event {
            t_us: 0,
            process: process.to_string(),
            kind: Kind::Invoke,
            f,
            id: 0,
            partition,
            value,
            offset,
            error: None,
        })
    }

    /// Completes operation `id`.
    #[allow(clippy::too_many_arguments)]
    pub fn complete(
        &self,
        process: &str,
        id: u64,
        kind: Kind,
        f: Func,
        partition: i32,
        value: Option<String>,
        offset: Option<i64>,
        error: Option<String>,
    ) {
        self.record(Event {
            t_us: 0,
            process: process.to_string(),
            kind,
            f,
            id,
            partition,
            value,
            offset,
            error,
        });
    }

    /// A record a consumer received, or a seek (no invoke).
    pub fn observe(
        &self,
        process: &str,
        f: Func,
        partition: i32,
        offset: i64,
        value: Option<String>,
    ) {
        self.record(Event {
            t_us: 0,
            process: process.to_string(),
            kind: Kind::Ok,
            f,
            id: 0,
            partition,
            value,
            offset: Some(offset),
            error: None,
        });
    }

    /// Flushes the JSONL file.
    pub fn flush(&self) -> std::io::Result<()> {
        match self.lock().out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// How many sends were acknowledged so far.
    pub fn acked_since(&self, from_us: u64) -> usize {
        self.lock()
            .events
            .iter()
            .rev()
            .take_while(|e| e.t_us >= from_us)
            .filter(|e| e.f == Func::Send && e.kind == Kind::Ok)
            .count()
    }
}
