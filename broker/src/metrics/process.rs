//! Process facts read at scrape time from `/proc/self` (Linux; elsewhere the memory and
//! fd families are left out), plus uptime and build info.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::names;
use super::text::Exposition;

/// Version and commit stamped by build.rs ("unknown" when git was unavailable).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Git commit the binary was built from.
pub const GIT_COMMIT: &str = env!("WEIR_GIT_COMMIT");

struct Start {
    at: Instant,
    unix_secs: f64,
}

static START: OnceLock<Start> = OnceLock::new();

/// Remembers the start time (call once, early).
pub fn mark_start() {
    START.get_or_init(|| Start {
        at: Instant::now(),
        unix_secs: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    });
}

fn resident_bytes() -> Option<u64> {
    // statm: size resident shared ... in pages.
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages.saturating_mul(u64::try_from(page).ok()?))
}

fn open_fds() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

/// Renders the process families.
pub fn render(e: &mut Exposition) {
    if let Some(rss) = resident_bytes() {
        e.family(names::PROCESS_RESIDENT_MEMORY);
        e.sample(names::PROCESS_RESIDENT_MEMORY, &[], rss);
    }
    if let Some(fds) = open_fds() {
        e.family(names::PROCESS_OPEN_FDS);
        e.sample(names::PROCESS_OPEN_FDS, &[], fds);
    }
    if let Some(s) = START.get() {
        e.family(names::PROCESS_UPTIME);
        e.sample(names::PROCESS_UPTIME, &[], s.at.elapsed().as_secs_f64());
        e.family(names::PROCESS_START_TIME);
        e.sample(names::PROCESS_START_TIME, &[], s.unix_secs);
    }
    e.family(names::BUILD_INFO);
    e.sample(
        names::BUILD_INFO,
        &[("version", VERSION), ("commit", GIT_COMMIT)],
        1,
    );
}
