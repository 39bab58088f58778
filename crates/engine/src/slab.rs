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
//! Slab, index and free list are reserved for the owner's cap up front, so a full container never
//! grows (a growing hash table holds its old and new arrays at once; see [`crate::memory`]).

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

use crate::lru::{LinkStore, Links};

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

    /// Reserve, for `cap` entries, the index ([`crate::memory::index_capacity`]), the slots and
    /// the free list. Only the index's control bytes are written now; slot pages are touched as
    /// entries arrive. A reservation the system refuses (a cap far above the memory there is)
    /// is skipped: the slab then grows as it fills.
    pub(crate) fn reserve(&mut self, cap: usize) {
        let want = crate::memory::index_capacity(cap).saturating_sub(self.index.len());
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

    /// Heap bytes of a slab reserved for `cap` entries: slots, free list and index (one `u32`
    /// and one control byte per hash bucket).
    pub(crate) fn bytes_for(cap: usize) -> usize {
        let cap = cap.max(1);
        cap * (std::mem::size_of::<E>() + std::mem::size_of::<u32>())
            + crate::memory::index_bytes(cap, std::mem::size_of::<u32>())
    }

    /// Heap bytes held now (capacity, not length): slots, free list and index.
    pub(crate) fn heap_bytes(&self) -> usize {
        let slots = self.slots.capacity() * std::mem::size_of::<E>();
        // hashbrown: one u32 slot plus one control byte per bucket.
        let buckets = self.index.capacity().next_power_of_two().max(1) * 8 / 7;
        let index = buckets * (std::mem::size_of::<u32>() + 1);
        slots + index + self.free.capacity() * std::mem::size_of::<u32>()
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
    fn a_reserved_slab_does_not_grow_until_its_cap() {
        let mut s: Slab<E, FixedState> = Slab::new(FixedState::with_seed(1));
        s.reserve(1000);
        let before = s.heap_bytes();
        for k in 0..1000 {
            s.insert(s.hash(k), entry(k));
        }
        assert_eq!(s.heap_bytes(), before);
    }
}
