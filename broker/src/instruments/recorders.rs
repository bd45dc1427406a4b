//! Handles for the families the `metrics` recorder keeps (counters, histograms, gauges
//! with fixed label sets). They are registered once, when the exporter is installed, and
//! kept in a `OnceLock`: the hot path does one atomic load and an atomic add, with no
//! registry lookup and no label allocation. With metrics disabled the lock stays empty
//! and every call here is a load and a branch.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram};
use weir_protocol::native::v1::response_envelope::Body as Resp;
use weir_protocol::native::v1::ResponseEnvelope;
use weir_protocol::native::ApiKey;
use weir_protocol::ErrorCode;

use super::names;

/// Per-API handles.
struct Api {
    key: ApiKey,
    requests: Counter,
    duration: Histogram,
}

/// Every fixed-label handle.
pub(crate) struct Handles {
    connections: Gauge,
    bad_frames: Counter,
    purgatory_fetch: Gauge,
    purgatory_produce: Gauge,
    flush: Histogram,
    /// Indexed by [`StorageOp`] then [`StorageThread`].
    storage_ops: [[Counter; 2]; 2],
    /// Indexed by [`FetchPath`].
    fetch_bytes: [Counter; 2],
    cleaner_bytes: Counter,
    cleaner_last_run: Gauge,
    /// Indexed by API key number.
    apis: Vec<Option<Api>>,
}

static HANDLES: OnceLock<Handles> = OnceLock::new();

/// Registers every handle with the (just installed) global recorder.
pub(crate) fn register() {
    let max = ApiKey::ALL.iter().map(|k| k.code()).max().unwrap_or(0);
    let mut apis: Vec<Option<Api>> = (0..=max).map(|_| None).collect();
    for &key in ApiKey::ALL {
        if let Some(slot) = usize::try_from(key.code())
            .ok()
            .and_then(|i| apis.get_mut(i))
        {
            *slot = Some(Api {
                key,
                requests: metrics::counter!(names::REQUESTS, "api" => key.name()),
                duration: metrics::histogram!(names::REQUEST_DURATION, "api" => key.name()),
            });
        }
    }
    let _ = HANDLES.set(Handles {
        connections: metrics::gauge!(names::CONNECTIONS_OPEN),
        bad_frames: metrics::counter!(names::BAD_FRAMES),
        purgatory_fetch: metrics::gauge!(names::PURGATORY_SIZE, "kind" => "fetch"),
        purgatory_produce: metrics::gauge!(names::PURGATORY_SIZE, "kind" => "produce"),
        flush: metrics::histogram!(names::LOG_FLUSH_DURATION),
        storage_ops: [StorageOp::Append, StorageOp::FetchRead].map(|op| {
            [StorageThread::Async, StorageThread::Blocking].map(|thread| {
                metrics::counter!(names::STORAGE_OPS, "op" => op.name(), "thread" => thread.name())
            })
        }),
        fetch_bytes: [FetchPath::Sendfile, FetchPath::Copy]
            .map(|path| metrics::counter!(names::FETCH_BYTES, "path" => path.name())),
        cleaner_bytes: metrics::counter!(names::CLEANER_CLEANED_BYTES),
        cleaner_last_run: metrics::gauge!(names::CLEANER_LAST_RUN),
        apis,
    });
}

/// A storage operation a request makes.
#[derive(Debug, Clone, Copy)]
pub enum StorageOp {
    /// A produce append.
    Append = 0,
    /// A fetch's reads (one per fetch pass, however many partitions).
    FetchRead = 1,
}

impl StorageOp {
    fn name(self) -> &'static str {
        match self {
            StorageOp::Append => "append",
            StorageOp::FetchRead => "fetch_read",
        }
    }
}

/// Where a storage operation ran.
#[derive(Debug, Clone, Copy)]
pub enum StorageThread {
    /// On the request's async thread (light: page cache only).
    Async = 0,
    /// Handed to a blocking thread.
    Blocking = 1,
}

impl StorageThread {
    fn name(self) -> &'static str {
        match self {
            StorageThread::Async => "async",
            StorageThread::Blocking => "blocking",
        }
    }
}

/// How fetched record bytes left the broker.
#[derive(Debug, Clone, Copy)]
pub enum FetchPath {
    /// `sendfile` from the segment file.
    Sendfile = 0,
    /// Copied into the response.
    Copy = 1,
}

impl FetchPath {
    fn name(self) -> &'static str {
        match self {
            FetchPath::Sendfile => "sendfile",
            FetchPath::Copy => "copy",
        }
    }
}

/// Counts record bytes a fetch answered with.
pub fn fetch_bytes(path: FetchPath, bytes: usize) {
    if bytes == 0 {
        return;
    }
    if let Some(c) = handles().and_then(|h| h.fetch_bytes.get(path as usize)) {
        c.increment(bytes as u64);
    }
}

/// Counts one storage operation.
pub fn storage_op(op: StorageOp, thread: StorageThread) {
    if let Some(c) = handles()
        .and_then(|h| h.storage_ops.get(op as usize))
        .and_then(|row| row.get(thread as usize))
    {
        c.increment(1);
    }
}

fn handles() -> Option<&'static Handles> {
    HANDLES.get()
}

/// Decrements a gauge when dropped (connection closed, waiter left purgatory).
#[must_use]
pub struct GaugeGuard(Option<&'static Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        if let Some(g) = self.0 {
            g.decrement(1.0);
        }
    }
}

fn guard(g: Option<&'static Gauge>) -> GaugeGuard {
    if let Some(g) = g {
        g.increment(1.0);
    }
    GaugeGuard(g)
}

/// Counts an open connection until the guard drops.
pub fn connection_opened() -> GaugeGuard {
    guard(handles().map(|h| &h.connections))
}

/// A connection closed for a bad frame.
pub fn bad_frame() {
    if let Some(h) = handles() {
        h.bad_frames.increment(1);
    }
}

/// What waits in purgatory.
#[derive(Debug, Clone, Copy)]
pub enum Purgatory {
    /// A long-polling fetch.
    Fetch,
    /// A produce waiting for its fsync.
    Produce,
}

/// Counts a parked request until the guard drops.
pub fn purgatory(kind: Purgatory) -> GaugeGuard {
    guard(handles().map(|h| match kind {
        Purgatory::Fetch => &h.purgatory_fetch,
        Purgatory::Produce => &h.purgatory_produce,
    }))
}

/// Records one fsync's duration.
pub fn log_flushed(took: Duration) {
    if let Some(h) = handles() {
        h.flush.record(took.as_secs_f64());
    }
}

/// Records a cleaner pass: bytes it read, and when it finished.
pub fn cleaner_ran(bytes_cleaned: u64, now_ms: i64) {
    if let Some(h) = handles() {
        h.cleaner_bytes.increment(bytes_cleaned);
        h.cleaner_last_run.set(now_ms as f64 / 1000.0);
    }
}

/// Times one request from dispatch to response.
pub struct RequestTimer {
    api: Option<&'static Api>,
    start: Instant,
}

impl RequestTimer {
    /// Starts timing a request of `key` (nothing is measured when metrics are off).
    pub fn start(key: ApiKey) -> RequestTimer {
        let api = handles().and_then(|h| {
            usize::try_from(key.code())
                .ok()
                .and_then(|i| h.apis.get(i))
                .and_then(Option::as_ref)
        });
        RequestTimer {
            api,
            start: Instant::now(),
        }
    }

    /// Records the count, the latency and every non-zero error code of the response.
    pub fn finish(self, response: Option<&ResponseEnvelope>) {
        let Some(api) = self.api else { return };
        api.requests.increment(1);
        api.duration.record(self.start.elapsed().as_secs_f64());
        if let Some(r) = response {
            error_codes(r, &mut |code| {
                if code != 0 {
                    count_error(api.key, code);
                }
            });
        }
    }
}

/// The worst follower lag of the partitions this broker leads.
pub fn follower_lag(records: i64, ms: i64) {
    metrics::gauge!(names::FOLLOWER_LAG_RECORDS).set(records as f64);
    metrics::gauge!(names::FOLLOWER_LAG_SECONDS).set(ms as f64 / 1000.0);
}

/// Bytes appended as a follower.
pub fn replica_fetched(bytes: usize) {
    metrics::counter!(names::REPLICA_FETCH_BYTES).increment(bytes as u64);
}

/// One ISR change written by the controller: `shrink` or `expand`.
pub fn isr_changed(kind: &'static str) {
    metrics::counter!(names::ISR_CHANGES, "kind" => kind).increment(1);
}

/// One partition leader change written by the controller, by `cause`.
pub fn leader_election(cause: &'static str) {
    metrics::counter!(names::LEADER_ELECTIONS, "cause" => cause).increment(1);
}

/// Errors are rare, so a registry lookup per error is fine; labels are `&'static str`.
fn count_error(api: ApiKey, code: i32) {
    let name = ErrorCode::from_i32(code).name();
    metrics::counter!(names::REQUEST_ERRORS, "api" => api.name(), "error" => name).increment(1);
}

/// Calls `f` with the envelope's code and the codes of the APIs whose responses carry
/// them per item; for the rest the envelope code is what counts.
fn error_codes(r: &ResponseEnvelope, f: &mut impl FnMut(i32)) {
    f(r.error_code);
    let Some(body) = &r.body else { return };
    match body {
        Resp::Produce(p) => p
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .for_each(|p| f(p.error_code)),
        Resp::Fetch(p) => {
            f(p.error_code);
            p.responses
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| f(p.error_code));
        }
        Resp::ListOffsets(p) => p
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| f(p.error_code)),
        Resp::OffsetCommit(p) => p
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| f(p.error_code)),
        Resp::CreateTopics(p) => p.topics.iter().for_each(|t| f(t.error_code)),
        Resp::DeleteTopics(p) => p.responses.iter().for_each(|t| f(t.error_code)),
        Resp::FindCoordinator(p) => f(p.error_code),
        Resp::JoinGroup(p) => f(p.error_code),
        Resp::SyncGroup(p) => f(p.error_code),
        Resp::Heartbeat(p) => f(p.error_code),
        Resp::LeaveGroup(p) => f(p.error_code),
        Resp::OffsetFetch(p) => f(p.error_code),
        _ => {}
    }
}
