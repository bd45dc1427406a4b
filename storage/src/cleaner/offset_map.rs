//! The cleaner's offset map: key hash → latest offset, in a fixed memory budget.
//!
//! Open addressing over a flat `Vec` of 24-byte slots (16-byte key hash + 8-byte offset),
//! like Kafka's SkimpyOffsetMap. The 128-bit hash (two keyed SipHash passes) makes a false
//! match between two different keys negligible (about n²/2¹²⁹), and the table never grows:
//! when it reaches its load factor the caller ends the pass there and starts another.

use std::hash::{Hash, Hasher};

const SLOT_BYTES: usize = 24;
const LOAD_FACTOR: f64 = 0.9;
const EMPTY: u64 = u64::MAX;

/// Fixed-size map from key to the latest offset seen for it.
pub struct OffsetMap {
    /// `[hash_hi, hash_lo, offset]`; offset == EMPTY marks a free slot.
    slots: Vec<[u64; 3]>,
    used: usize,
    max_entries: usize,
    latest_offset: i64,
}

fn hash128(key: &[u8]) -> (u64, u64) {
    let mut a = std::hash::DefaultHasher::new();
    key.hash(&mut a);
    let mut b = std::hash::DefaultHasher::new();
    0x5eed_u32.hash(&mut b);
    key.hash(&mut b);
    (a.finish(), b.finish())
}

impl OffsetMap {
    /// A map using about `memory_bytes` (at least 16 slots).
    pub fn with_memory(memory_bytes: usize) -> OffsetMap {
        let n = (memory_bytes / SLOT_BYTES).max(16);
        OffsetMap {
            slots: vec![[0, 0, EMPTY]; n],
            used: 0,
            max_entries: ((n as f64) * LOAD_FACTOR) as usize,
            latest_offset: -1,
        }
    }

    /// Keys the map can hold before it counts as full.
    pub fn capacity(&self) -> usize {
        self.max_entries
    }

    /// Distinct keys stored.
    pub fn len(&self) -> usize {
        self.used
    }

    /// No keys stored?
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// At the load factor: no new key may be added.
    pub fn is_full(&self) -> bool {
        self.used >= self.max_entries
    }

    /// Largest offset put so far (-1 if none).
    pub fn latest_offset(&self) -> i64 {
        self.latest_offset
    }

    /// Forgets everything (keeps the allocation).
    pub fn clear(&mut self) {
        for s in &mut self.slots {
            s[2] = EMPTY;
        }
        self.used = 0;
        self.latest_offset = -1;
    }

    fn find(&self, h: (u64, u64)) -> usize {
        let n = self.slots.len();
        let mut i = (h.0 as usize) % n;
        // The table is never completely full (load factor < 1), so this ends.
        for _ in 0..n {
            match self.slots.get(i) {
                Some(s) if s[2] == EMPTY || (s[0] == h.0 && s[1] == h.1) => return i,
                _ => i = (i + 1) % n,
            }
        }
        i
    }

    /// Records `offset` as the latest for `key`. Returns false (and stores nothing) when
    /// the key is new and the map is full.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let h = hash128(key);
        let i = self.find(h);
        let Some(slot) = self.slots.get_mut(i) else {
            return false;
        };
        if slot[2] == EMPTY {
            if self.used >= self.max_entries {
                return false;
            }
            self.used += 1;
        }
        *slot = [h.0, h.1, offset as u64];
        self.latest_offset = self.latest_offset.max(offset);
        true
    }

    /// Latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        let h = hash128(key);
        self.slots
            .get(self.find(h))
            .filter(|s| s[2] != EMPTY)
            .map(|s| s[2] as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_overwrite_and_fill() {
        let mut m = OffsetMap::with_memory(24 * 100);
        assert_eq!(m.capacity(), 90);
        assert!(m.put(b"a", 1));
        assert!(m.put(b"b", 2));
        assert!(m.put(b"a", 7));
        assert_eq!(m.get(b"a"), Some(7));
        assert_eq!(m.get(b"b"), Some(2));
        assert_eq!(m.get(b"c"), None);
        assert_eq!((m.len(), m.latest_offset()), (2, 7));
        for i in 0..88u32 {
            assert!(m.put(&i.to_be_bytes(), 100 + i64::from(i)));
        }
        assert!(m.is_full());
        assert!(!m.put(b"new", 1000), "full: new keys refused");
        assert!(m.put(b"a", 1001), "existing keys still update");
        for i in 0..88u32 {
            assert_eq!(m.get(&i.to_be_bytes()), Some(100 + i64::from(i)));
        }
        m.clear();
        assert!(m.is_empty());
        assert_eq!(m.get(b"a"), None);
    }
}
