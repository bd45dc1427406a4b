//! A user-space TCP proxy for one directed link (b1→b2's Raft port, b1→b2's broker port,
//! or clients→b2), so partitions need no root and no kernel module. Each direction of a
//! link can pass, be delayed, or be held (a black hole: bytes are not read, so nothing is
//! delivered and the sender's buffers fill as on a dead route); `reset` closes every
//! connection the link carries. New connections are refused while the link is held in
//! the direction of the connecting side (the SYN would be lost).
//!
//! Held bytes are not dropped: a healed link resets its connections instead, as a real
//! TCP connection would have timed out meanwhile, so no stream resumes with a hole in it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often a held direction looks again whether it was healed.
const HELD_POLL: Duration = Duration::from_millis(20);

/// The shared switches of one link.
#[derive(Debug, Default)]
struct State {
    /// Connecting side → target held.
    up_held: AtomicBool,
    /// Target → connecting side held.
    down_held: AtomicBool,
    /// Added latency per forwarded chunk, both directions.
    delay_ms: AtomicU64,
}

/// One proxied, directed link; dropping it stops the listener and every connection.
pub struct Link {
    /// What the link carries, e.g. `raft 1->2`.
    pub name: String,
    /// Where the link listens (127.0.0.1).
    pub addr: String,
    state: Arc<State>,
    /// Bumped by `reset`: connections of an older generation close.
    generation: watch::Sender<u64>,
    stop: CancellationToken,
}

impl Link {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(name: &str, target: String) -> std::io::Result<Link> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let state = Arc::new(State::default());
        let (generation, _) = watch::channel(0u64);
        let stop = CancellationToken::new();
        tokio::spawn(accept(
            listener,
            target,
            state.clone(),
            generation.clone(),
            stop.clone(),
        ));
        Ok(Link {
            name: name.to_string(),
            addr,
            state,
            generation,
            stop,
        })
    }

    /// Holds (black-holes) the directions given; `false` passes again.
    pub fn hold(&self, up: bool, down: bool) {
        self.state.up_held.store(up, Ordering::SeqCst);
        self.state.down_held.store(down, Ordering::SeqCst);
    }

    /// Adds `ms` of latency per forwarded chunk (0: none).
    pub fn delay(&self, ms: u64) {
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Closes every connection the link carries now.
    pub fn reset(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Passes both ways without delay, resetting connections that were held.
    pub fn heal(&self) {
        let was_held = self.state.up_held.load(Ordering::SeqCst)
            || self.state.down_held.load(Ordering::SeqCst);
        // Reset before passing again: a chunk waiting in a held direction sees the new
        // generation when it wakes and is dropped with its connection, never delivered
        // first (the test below caught the held reply arriving before the reset).
        if was_held {
            self.reset();
        }
        self.hold(false, false);
        self.delay(0);
    }

    /// Whether anything is held or delayed.
    pub fn is_faulty(&self) -> bool {
        self.state.up_held.load(Ordering::SeqCst)
            || self.state.down_held.load(Ordering::SeqCst)
            || self.state.delay_ms.load(Ordering::SeqCst) > 0
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept(
    listener: TcpListener,
    target: String,
    state: Arc<State>,
    generation: watch::Sender<u64>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => return,
        };
        let Ok((inbound, _)) = accepted else {
            // Out of descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if state.up_held.load(Ordering::SeqCst) {
            // The connect would time out on a dead route; closing at once is the
            // harness's approximation (clients then retry, as they would after a timeout).
            drop(inbound);
            continue;
        }
        let state = state.clone();
        let gen_rx = generation.subscribe();
        let target = target.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(&target).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            let up = pump(ri, wo, state.clone(), true, gen_rx.clone());
            let down = pump(ro, wi, state, false, gen_rx.clone());
            let mut gen_rx = gen_rx;
            // Either side closing, a reset or the harness stopping ends both directions.
            tokio::select! {
                _ = up => {}
                _ = down => {}
                _ = gen_rx.changed() => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

/// Copies one direction, honouring hold and delay before each write.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    state: Arc<State>,
    up: bool,
    generation: watch::Receiver<u64>,
) where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let born = *generation.borrow();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Held after the read: the chunk waits here and nothing more is read meanwhile,
        // so the sender's buffers fill as on a dead route.
        loop {
            let held = if up {
                state.up_held.load(Ordering::SeqCst)
            } else {
                state.down_held.load(Ordering::SeqCst)
            };
            if !held {
                break;
            }
            tokio::time::sleep(HELD_POLL).await;
        }
        if *generation.borrow() != born {
            // Reset while this chunk waited: the connection is being closed.
            return;
        }
        let delay = state.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if to
            .write_all(buf.get(..n).unwrap_or_default())
            .await
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn echo_server() -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut b = [0u8; 1024];
                    loop {
                        match s.read(&mut b).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&b[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        s.write_all(b"ping").await.ok()?;
        let mut b = [0u8; 4];
        match tokio::time::timeout(within, s.read_exact(&mut b)).await {
            Ok(Ok(_)) => Some(b.to_vec()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn passes_holds_one_direction_and_resets() {
        let link = Link::start("t", echo_server().await).await.unwrap();
        let mut s = TcpStream::connect(&link.addr).await.unwrap();
        assert_eq!(
            round_trip(&mut s, Duration::from_secs(5)).await.unwrap(),
            b"ping"
        );
        // Answers held: the request arrives, nothing comes back.
        link.hold(false, true);
        assert!(round_trip(&mut s, Duration::from_millis(300))
            .await
            .is_none());
        // Healing resets the connection: the next read sees it closed.
        link.heal();
        let mut b = [0u8; 8];
        let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await;
        assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "{r:?}");
        // A new connection works again; one made while held upward is refused.
        let mut s = TcpStream::connect(&link.addr).await.unwrap();
        assert!(round_trip(&mut s, Duration::from_secs(5)).await.is_some());
        link.hold(true, false);
        let mut s2 = TcpStream::connect(&link.addr).await.unwrap();
        assert!(round_trip(&mut s2, Duration::from_millis(300))
            .await
            .is_none());
    }
}
