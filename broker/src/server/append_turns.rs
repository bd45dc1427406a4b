//! Append turns: the produce requests of one connection append in the order they arrived,
//! as in Kafka (which mutes a connection while a request is in flight). Requests of a
//! connection still run concurrently (validation, fsync waits, fetches), so only the
//! in-memory append is serialised: a request waits for its turn just before appending and
//! gives it up right after, not after its fsync, so pipelined produces still share fsyncs.
//!
//! Turns form a chain of oneshot channels, one link per produce request: a turn waits for
//! its predecessor's link and its own link is the successor's. Giving a turn up is
//! dropping it, so no path (an error, a rejected batch, a panic) can leak one and hang the
//! connection. A turn dropped before its own turn came hands what it was waiting for to
//! its successor, so a request that appends nothing never lets a later one overtake an
//! earlier one. A connection that never produces allocates nothing.

use tokio::sync::oneshot;

/// What a link carries when a turn is dropped before its predecessors appended: the link
/// it was still waiting on. A link closed without a message means "appended, go ahead".
#[derive(Debug)]
struct StillWaiting(oneshot::Receiver<StillWaiting>);

/// Hands out append turns of one connection in arrival order. Owned by the read loop.
#[derive(Debug, Default)]
pub struct AppendTurns {
    /// The link the most recent turn will close.
    last: Option<oneshot::Receiver<StillWaiting>>,
}

impl AppendTurns {
    /// A turn behind every turn handed out before. Call in arrival order.
    pub fn next_turn(&mut self) -> AppendTurn {
        let (done, link) = oneshot::channel();
        AppendTurn {
            earlier: self.last.replace(link),
            done: Some(done),
        }
    }
}

/// One produce request's place in its connection's append order. Dropping it lets the
/// connection's next produce request append.
#[derive(Debug)]
pub struct AppendTurn {
    /// Closes once every earlier turn is given up; `None` once that was seen.
    earlier: Option<oneshot::Receiver<StillWaiting>>,
    /// The next turn's `earlier`.
    done: Option<oneshot::Sender<StillWaiting>>,
}

impl AppendTurn {
    /// Waits until every earlier turn of the connection was given up. Cancel-safe: a
    /// dropped wait keeps the turn's place.
    pub async fn wait(&mut self) {
        while let Some(link) = self.earlier.as_mut() {
            self.earlier = match link.await {
                // The predecessor left early: wait for what it was waiting for.
                Ok(StillWaiting(further_back)) => Some(further_back),
                Err(_) => None,
            };
        }
    }
}

impl Drop for AppendTurn {
    fn drop(&mut self) {
        if let (Some(earlier), Some(done)) = (self.earlier.take(), self.done.take()) {
            // Our turn had not come: the successor must still wait for our predecessors.
            // Unsent means the successor is gone too, and nobody is left to wait.
            let _ = done.send(StillWaiting(earlier));
        }
        // Otherwise dropping `done` unsent closes the link: the successor may go.
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll};

    /// Whether `wait` finishes without anything else happening.
    fn ready(turn: &mut AppendTurn) -> bool {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        matches!(pin!(turn.wait()).poll(&mut cx), Poll::Ready(()))
    }

    #[test]
    fn turns_come_in_the_order_they_were_handed_out() {
        let mut turns = AppendTurns::default();
        let mut a = turns.next_turn();
        let mut b = turns.next_turn();
        let mut c = turns.next_turn();
        assert!(ready(&mut a), "the first turn waits for nobody");
        assert!(!ready(&mut b));
        assert!(!ready(&mut c));
        drop(a);
        assert!(ready(&mut b));
        assert!(!ready(&mut c), "b has not given its turn up");
        drop(b);
        assert!(ready(&mut c));
    }

    #[test]
    fn a_turn_dropped_early_does_not_let_later_turns_overtake_earlier_ones() {
        let mut turns = AppendTurns::default();
        let a = turns.next_turn();
        let b = turns.next_turn();
        let c = turns.next_turn();
        let mut d = turns.next_turn();
        // b and c leave (rejected batches, say) while a is still appending.
        drop(c);
        drop(b);
        assert!(!ready(&mut d), "a has not appended yet");
        drop(a);
        assert!(ready(&mut d));
    }

    #[tokio::test]
    async fn a_waiting_turn_wakes_when_its_predecessor_is_dropped() {
        let mut turns = AppendTurns::default();
        let a = turns.next_turn();
        let mut b = turns.next_turn();
        let waiter = tokio::spawn(async move {
            b.wait().await;
        });
        drop(a);
        waiter.await.unwrap();
    }

    #[test]
    fn a_cancelled_wait_keeps_the_place() {
        let mut turns = AppendTurns::default();
        let a = turns.next_turn();
        let mut b = turns.next_turn();
        let mut c = turns.next_turn();
        assert!(!ready(&mut b), "polled once, then dropped");
        drop(b);
        assert!(
            !ready(&mut c),
            "b's wait was cancelled but a is still there"
        );
        drop(a);
        assert!(ready(&mut c));
    }
}
