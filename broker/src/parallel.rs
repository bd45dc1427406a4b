//! Blocking work spread over a few scoped threads (opening many partition logs is mostly
//! waiting on the disk, so a handful of threads beat one even on two cores).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs `f` on every item on up to `threads` scoped threads and returns every result, in
/// item order.
pub fn run_each<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::AcqRel);
                let (Some(item), Some(slot)) = (items.get(i), slots.get(i)) else {
                    break;
                };
                let r = f(item);
                // Each slot is written once, by the one thread that took its index.
                match slot.lock() {
                    Ok(mut g) => *g = Some(r),
                    Err(p) => *p.into_inner() = Some(r),
                }
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|slot| match slot.into_inner() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_back_in_item_order() {
        let items: Vec<u32> = (0..100).collect();
        let out = super::run_each(&items, 7, |x| x * 2);
        assert_eq!(out, (0..100).map(|x| x * 2).collect::<Vec<_>>());
        assert!(super::run_each(&[] as &[u32], 4, |x| *x).is_empty());
    }
}
