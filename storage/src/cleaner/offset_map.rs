//! The cleaner's offset map: key hash → latest offset, in a bounded memory budget.
//!
//! Open addressing (linear probing) over a flat `Vec` of 24-byte slots (16-byte key hash +
//! 8-byte offset), like Kafka's SkimpyOffsetMap. The table starts small and doubles until
//! it would exceed its budget, so small logs do not pay for the full budget. The 128-bit
//! hash (two SipHash passes with per-process random keys) makes a false match between
//! different keys negligible (about n²/2¹²⁹) and not something a client can aim for. When
//! the table reaches its load factor at full size, the caller ends the pass there and
//! starts another.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

const SLOT_BYTES: usize = 24;
const LOAD_FACTOR: f64 = 0.9;
const INITIAL_SLOTS: usize = 1 << 16;

/// Bounded map from key to the latest offset seen for it.
pub struct OffsetMap {
    /// `[hash_hi, hash_lo, offset + 1]`; 0 in the last word marks a free slot, so a
    /// fresh table is zeroed memory the OS hands out lazily.
    slots: Vec<[u64; 3]>,
    used: usize,
    max_slots: usize,
    latest_offset: i64,
    hashers: (RandomState, RandomState),
}

fn entries_for(slots: usize) -> usize {
    ((slots as f64) * LOAD_FACTOR) as usize
}

impl OffsetMap {
    /// A map that may use up to about `memory_bytes` (at least 16 slots).
    pub fn with_memory(memory_bytes: usize) -> OffsetMap {
        let budget = (memory_bytes / SLOT_BYTES).max(16);
        // Largest power of two within the budget.
        let max_slots = 1usize << (usize::BITS - 1 - budget.leading_zeros());
        OffsetMap {
            slots: vec![[0u64; 3]; max_slots.min(INITIAL_SLOTS)],
            used: 0,
            max_slots,
            latest_offset: -1,
            hashers: (RandomState::new(), RandomState::new()),
        }
    }

    /// Keys the map can hold at full size before it counts as full.
    pub fn capacity(&self) -> usize {
        entries_for(self.max_slots)
    }

    /// Distinct keys stored.
    pub fn len(&self) -> usize {
        self.used
    }

    /// No keys stored?
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// At the load factor at full size: no new key may be added.
    pub fn is_full(&self) -> bool {
        self.used >= self.capacity()
    }

    /// Largest offset put so far (-1 if none).
    pub fn latest_offset(&self) -> i64 {
        self.latest_offset
    }

    /// Bytes currently allocated for slots.
    pub fn allocated_bytes(&self) -> usize {
        self.slots.len() * SLOT_BYTES
    }

    /// Forgets everything and gives back the grown table.
    pub fn clear(&mut self) {
        self.slots = vec![[0u64; 3]; self.max_slots.min(INITIAL_SLOTS)];
        self.used = 0;
        self.latest_offset = -1;
    }

    fn hash(&self, key: &[u8]) -> (u64, u64) {
        (self.hashers.0.hash_one(key), self.hashers.1.hash_one(key))
    }

    /// Slot holding `h` or the free slot where it would go.
    fn find(slots: &[[u64; 3]], h: (u64, u64)) -> usize {
        let mask = slots.len() - 1;
        let mut i = (h.0 as usize) & mask;
        // The table is never full (load factor < 1), so a free slot ends the probe.
        for _ in 0..slots.len() {
            match slots.get(i) {
                Some(s) if s[2] == 0 || (s[0] == h.0 && s[1] == h.1) => return i,
                _ => i = (i + 1) & mask,
            }
        }
        i
    }

    fn grow(&mut self) {
        let new_len = self.slots.len() * 2;
        let mut new = vec![[0u64; 3]; new_len];
        for s in self.slots.iter().filter(|s| s[2] != 0) {
            let i = Self::find(&new, (s[0], s[1]));
            if let Some(slot) = new.get_mut(i) {
                *slot = *s;
            }
        }
        self.slots = new;
    }

    /// Records `offset` as the latest for `key`. Returns false (and stores nothing) when
    /// the key is new and the map is full.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let h = self.hash(key);
        let mut i = Self::find(&self.slots, h);
        let is_new = self.slots.get(i).is_some_and(|s| s[2] == 0);
        if is_new {
            if self.used >= self.capacity() {
                return false;
            }
            if self.used + 1 > entries_for(self.slots.len()) && self.slots.len() < self.max_slots {
                self.grow();
                i = Self::find(&self.slots, h);
            }
            self.used += 1;
        }
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = [h.0, h.1, offset as u64 + 1];
        }
        self.latest_offset = self.latest_offset.max(offset);
        true
    }

    /// Latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        let h = self.hash(key);
        self.slots
            .get(Self::find(&self.slots, h))
            .filter(|s| s[2] != 0)
            .map(|s| (s[2] - 1) as i64)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn put_get_overwrite_and_fill() {
        let mut m = OffsetMap::with_memory(24 * 100);
        assert_eq!(m.capacity(), 57, "64 slots at load factor 0.9");
        assert!(m.put(b"a", 1));
        assert!(m.put(b"b", 2));
        assert!(m.put(b"a", 7));
        assert_eq!(m.get(b"a"), Some(7));
        assert_eq!(m.get(b"b"), Some(2));
        assert_eq!(m.get(b"c"), None);
        assert_eq!((m.len(), m.latest_offset()), (2, 7));
        for i in 0..55u32 {
            assert!(m.put(&i.to_be_bytes(), 100 + i64::from(i)));
        }
        assert!(m.is_full());
        assert!(!m.put(b"new", 1000), "full: new keys refused");
        assert!(m.put(b"a", 1001), "existing keys still update");
        for i in 0..55u32 {
            assert_eq!(m.get(&i.to_be_bytes()), Some(100 + i64::from(i)));
        }
        m.clear();
        assert!(m.is_empty());
        assert_eq!(m.get(b"a"), None);
    }

    #[test]
    fn grows_up_to_the_budget() {
        let mut m = OffsetMap::with_memory(24 << 20);
        assert_eq!(m.allocated_bytes(), 24 * INITIAL_SLOTS);
        for i in 0..200_000u32 {
            assert!(m.put(&i.to_le_bytes(), i64::from(i)));
        }
        assert_eq!(m.allocated_bytes(), 24 * (1 << 18));
        for i in (0..200_000u32).step_by(997) {
            assert_eq!(m.get(&i.to_le_bytes()), Some(i64::from(i)));
        }
        m.clear();
        assert_eq!(m.allocated_bytes(), 24 * INITIAL_SLOTS);
    }
}
