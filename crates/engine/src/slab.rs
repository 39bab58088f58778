//! Slab storage with a hash index of slot numbers: the container under the flow table and the
//! detector's LRU maps.
//!
//! Entries live in a `Vec` (free slots reused, newest freed first); a `hashbrown::HashTable<u32>`
//! maps a key's hash to its slot, so the key is stored once, inside the entry. Entries carry the
//! links of the intrusive lists ([`crate::lru`]) their owner orders them by: the flow table keeps
//! five (one per protocol class and one for closing TCP), an [`crate::lrumap::LruMap`] one. A slot
//! can stay taken after its key left the index (an ended flow whose record is not made yet):
//! taking a key out of the index and giving its slot back are two steps.
//!
//! Slots and free list are reserved for the owner's cap up front (address space only: pages are
//! touched as entries arrive, in slot order). The index starts small and doubles as entries
//! arrive, so that a table holding thousands of entries under a cap of millions probes a few
//! hundred kilobytes of buckets instead of tens of megabytes: each lookup's control bytes and
//! slot number then stay in cache. Its growth ends at the size a reservation for the cap would
//! have had (hashbrown keeps at most 7/8 of its buckets full and doubles only when more than half
//! of them hold entries; past that it rehashes in place), and
//! [`crate::memory::grown_index_bytes`] counts that size plus the half-size array a doubling
//! holds at the same time.

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

use crate::lru::{LinkStore, Links};

/// Items the index is first reserved for (a few kilobytes of buckets).
const INDEX_START: usize = 1024;

/// What a slab entry must offer: its key (hashed for the index) and its list links.
pub(crate) trait SlabEntry {
    /// The key the index finds the entry by.
    type Key: Hash + Eq + Copy;
    /// The entry's key.
    fn key(&self) -> Self::Key;
    /// The entry's links in its owner's list.
    fn links(&mut self) -> &mut Links;
}

/// Entries in slots, found by key through a hash index of slot numbers.
pub(crate) struct Slab<E, S> {
    hasher: S,
    index: HashTable<u32>,
    slots: Vec<E>,
    free: Vec<u32>,
}

impl<E: SlabEntry, S: BuildHasher> Slab<E, S> {
    /// An empty slab hashing keys with `hasher`.
    pub(crate) fn new(hasher: S) -> Self {
        Self {
            hasher,
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Reserve, for `cap` entries, the slots and the free list (address space: slot pages are
    /// touched as entries arrive), and the index's first [`INDEX_START`] items; the index grows
    /// as entries arrive (see the module docs). A reservation the system refuses (a cap far
    /// above the memory there is) is skipped: the slab then grows as it fills.
    pub(crate) fn reserve(&mut self, cap: usize) {
        let want = INDEX_START
            .min(crate::memory::index_capacity(cap))
            .saturating_sub(self.index.len());
        let (slots, hasher) = (&self.slots, &self.hasher);
        let _ = self.index.try_reserve(want, |&i| {
            slots
                .get(i as usize)
                .map_or(0, |e| hasher.hash_one(e.key()))
        });
        let _ = self
            .slots
            .try_reserve_exact(cap.saturating_sub(self.slots.len()));
        let _ = self
            .free
            .try_reserve_exact(cap.saturating_sub(self.free.len()));
    }

    /// Heap bytes of a slab with `cap` entries at most: slots, free list and index (one `u32`
    /// and one control byte per hash bucket, at its largest and while it doubles to that).
    pub(crate) fn bytes_for(cap: usize) -> usize {
        let cap = cap.max(1);
        cap * (std::mem::size_of::<E>() + std::mem::size_of::<u32>())
            + crate::memory::grown_index_bytes(cap, std::mem::size_of::<u32>())
    }

    /// Heap bytes held now (capacity, not length): slots, free list and index.
    pub(crate) fn heap_bytes(&self) -> usize {
        let slots = self.slots.capacity() * std::mem::size_of::<E>();
        slots + self.index.allocation_size() + self.free.capacity() * std::mem::size_of::<u32>()
    }

    /// Keys in the index.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Slots ever used (taken or free).
    #[inline]
    pub(crate) fn slots_used(&self) -> usize {
        self.slots.len()
    }

    /// Whether a freed slot is waiting to be reused.
    #[inline]
    pub(crate) fn has_free_slot(&self) -> bool {
        !self.free.is_empty()
    }

    /// The index's hash of `key`.
    #[inline]
    pub(crate) fn hash(&self, key: E::Key) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The slot of `key` (whose hash is `hash`), if it is in the index.
    #[inline]
    pub(crate) fn find(&self, hash: u64, key: &E::Key) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| slots[i as usize].key() == *key)
            .copied()
    }

    /// Put `entry` (whose key hashes to `hash` and is not in the index) in a slot, the most
    /// recently freed one first, and index it. Returns the slot.
    #[inline]
    pub(crate) fn insert(&mut self, hash: u64, entry: E) -> u32 {
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = entry;
                i
            }
            None => {
                self.slots.push(entry);
                (self.slots.len() - 1) as u32
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .insert_unique(hash, idx, |&i| hasher.hash_one(slots[i as usize].key()));
        idx
    }

    /// Take the key of slot `idx` out of the index; the slot stays taken.
    pub(crate) fn unindex(&mut self, idx: u32) {
        let Some(e) = self.slots.get(idx as usize) else {
            return;
        };
        let hash = self.hasher.hash_one(e.key());
        if let Ok(entry) = self.index.find_entry(hash, |&i| i == idx) {
            entry.remove();
        }
    }

    /// Give slot `idx` (already out of the index) back for reuse.
    #[inline]
    pub(crate) fn release(&mut self, idx: u32) {
        self.free.push(idx);
    }

    /// The entry in slot `idx`. Panics on a slot number this slab never handed out.
    #[inline]
    pub(crate) fn get(&self, idx: u32) -> &E {
        &self.slots[idx as usize]
    }

    /// The entry in slot `idx`, mutably. Panics on a slot number this slab never handed out.
    #[inline]
    pub(crate) fn get_mut(&mut self, idx: u32) -> &mut E {
        &mut self.slots[idx as usize]
    }

    /// The entry in slot `idx`, if this slab ever handed that slot out.
    #[inline]
    pub(crate) fn try_get(&self, idx: u32) -> Option<&E> {
        self.slots.get(idx as usize)
    }

    /// The entry in slot `idx` mutably, if this slab ever handed that slot out.
    #[inline]
    pub(crate) fn try_get_mut(&mut self, idx: u32) -> Option<&mut E> {
        self.slots.get_mut(idx as usize)
    }

    /// Every slot ever used, taken or free, in slot order.
    pub(crate) fn slots(&self) -> &[E] {
        &self.slots
    }
}

impl<E: SlabEntry, S> LinkStore for Slab<E, S> {
    #[inline]
    fn links(&mut self, idx: u32) -> &mut Links {
        self.slots[idx as usize].links()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foldhash::fast::FixedState;

    struct E {
        key: u64,
        links: Links,
    }

    impl SlabEntry for E {
        type Key = u64;
        fn key(&self) -> u64 {
            self.key
        }
        fn links(&mut self) -> &mut Links {
            &mut self.links
        }
    }

    fn entry(key: u64) -> E {
        E {
            key,
            links: Links::default(),
        }
    }

    #[test]
    fn insert_find_unindex_release_reuses_the_newest_freed_slot() {
        let mut s: Slab<E, FixedState> = Slab::new(FixedState::with_seed(7));
        s.reserve(4);
        let slots: Vec<u32> = (10..14).map(|k| s.insert(s.hash(k), entry(k))).collect();
        assert_eq!(slots, [0, 1, 2, 3]);
        assert_eq!((s.len(), s.slots_used()), (4, 4));
        assert_eq!(s.find(s.hash(12), &12), Some(2));
        assert_eq!(s.find(s.hash(99), &99), None);

        s.unindex(1);
        s.unindex(2);
        assert_eq!(s.find(s.hash(11), &11), None);
        assert_eq!(s.len(), 2);
        assert!(!s.has_free_slot(), "unindexed slots stay taken");
        s.release(1);
        s.release(2);
        assert!(s.has_free_slot());
        assert_eq!(s.insert(s.hash(20), entry(20)), 2, "newest freed first");
        assert_eq!(s.insert(s.hash(21), entry(21)), 1);
        assert_eq!(s.insert(s.hash(22), entry(22)), 4);
        assert_eq!(s.get(2).key, 20);
        assert_eq!(s.find(s.hash(21), &21), Some(1));
        assert!(s.try_get(5).is_none());
        s.unindex(9);
    }

    #[test]
    fn the_index_grows_with_its_entries_and_ends_within_what_the_cap_counts() {
        let cap = 100_000;
        let mut s: Slab<E, FixedState> = Slab::new(FixedState::with_seed(1));
        s.reserve(cap);
        let start = s.index.allocation_size();
        assert!(start < 64 * 1024, "the index starts small: {start} bytes");
        for k in 0..1000 {
            s.insert(s.hash(k), entry(k));
        }
        assert!(s.index.allocation_size() < 64 * 1024);
        // Fill to the cap, then churn at the cap as an owner does (one out, one in), so that
        // deleted buckets pile up and force the index to rehash.
        for k in 1000..cap as u64 {
            s.insert(s.hash(k), entry(k));
        }
        let reserved_max = crate::memory::grown_index_bytes(cap, 4);
        let mut largest = s.index.allocation_size();
        for round in 0..5u64 {
            let before = s.index.allocation_size();
            for k in cap as u64 * (round + 1)..cap as u64 * (round + 2) {
                let old = (k % cap as u64) as u32;
                s.unindex(old);
                s.release(old);
                assert_eq!(s.insert(s.hash(k), entry(k)), old);
            }
            largest = largest.max(s.index.allocation_size());
            if round > 0 {
                // One doubling at most (the first deleted buckets at the cap), then in place.
                assert_eq!(
                    s.index.allocation_size(),
                    before,
                    "grew again in round {round}"
                );
            }
        }
        assert_eq!(s.len(), cap);
        assert!(
            largest + largest / 2 <= reserved_max + 64,
            "largest index and its half-size predecessor ({largest} x 1.5) within the budget's \
             {reserved_max}"
        );
        assert!(s.heap_bytes() <= Slab::<E, FixedState>::bytes_for(cap));
    }
}
