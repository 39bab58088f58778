//! A bounded map with least-recently-used order: a [`Slab`] (slots and a hash index of them)
//! and one intrusive list. Used for the detector's host, pair and endpoint state.
//!
//! The slab's slots are reserved for the cap when the map is made and its index grows with the
//! entries (see [`crate::slab`]): what a map costs at most is [`LruMap::bytes_for`] of its cap
//! (see [`crate::memory`]).

use std::hash::Hash;

use ahash::RandomState;

use crate::lru::{Links, List, NIL};
use crate::slab::{Slab, SlabEntry};

pub(crate) struct Entry<K, V> {
    key: K,
    value: V,
    links: Links,
    live: bool,
}

impl<K: Hash + Eq + Copy, V> SlabEntry for Entry<K, V> {
    type Key = K;
    #[inline]
    fn key(&self) -> K {
        self.key
    }
    #[inline]
    fn links(&mut self) -> &mut Links {
        &mut self.links
    }
}

/// A map of at most `cap` entries; inserting into a full map evicts the least recently used.
pub(crate) struct LruMap<K, V> {
    slab: Slab<Entry<K, V>, RandomState>,
    order: List,
    cap: usize,
    pub(crate) evicted: u64,
}

impl<K: Hash + Eq + Copy, V: Default> LruMap<K, V> {
    pub(crate) fn new(cap: usize, hasher: RandomState) -> Self {
        let cap = cap.max(1);
        let mut slab = Slab::new(hasher);
        slab.reserve(cap);
        Self {
            slab,
            order: List::default(),
            cap,
            evicted: 0,
        }
    }

    /// Heap bytes of a map with this cap, at most: slab entries, index and free list.
    pub(crate) fn bytes_for(cap: usize) -> usize {
        Slab::<Entry<K, V>, RandomState>::bytes_for(cap)
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    /// A new cap (a config reload): a lower one takes effect as entries arrive; a higher one
    /// is reserved now.
    pub(crate) fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
        self.slab.reserve(self.cap);
    }

    /// Index of `key`, moved to most recently used; inserts `make()` if absent (evicting the
    /// least recently used entry at the cap, handed to `on_evict`). Returns `(index, inserted)`.
    pub(crate) fn upsert(
        &mut self,
        key: K,
        make: impl FnOnce() -> V,
        mut on_evict: impl FnMut(K, V),
    ) -> (u32, bool) {
        let hash = self.slab.hash(key);
        if let Some(idx) = self.slab.find(hash, &key) {
            self.order.move_to_back(&mut self.slab, idx);
            return (idx, false);
        }
        if self.slab.len() >= self.cap {
            if let Some((k, v)) = self.oldest().and_then(|idx| self.remove(idx)) {
                self.evicted += 1;
                on_evict(k, v);
            }
        }
        let entry = Entry {
            key,
            value: make(),
            links: Links::default(),
            live: true,
        };
        let idx = self.slab.insert(hash, entry);
        self.order.push_back(&mut self.slab, idx);
        (idx, true)
    }

    /// Entries from least to most recently used (inserting them in this order rebuilds the
    /// same order).
    pub(crate) fn iter_lru(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        let mut idx = self.order.head;
        std::iter::from_fn(move || {
            if idx == NIL {
                return None;
            }
            let e = self.slab.try_get(idx)?;
            idx = e.links.next;
            Some((&e.key, &e.value))
        })
    }

    /// The key at `idx`, if that slot is live.
    #[inline]
    pub(crate) fn key_at(&self, idx: u32) -> Option<&K> {
        self.slab.try_get(idx).filter(|e| e.live).map(|e| &e.key)
    }

    /// Mark the live entry at `idx` most recently used.
    #[inline]
    pub(crate) fn touch(&mut self, idx: u32) {
        self.order.move_to_back(&mut self.slab, idx);
    }

    /// Look up without changing the order.
    pub(crate) fn find(&self, key: &K) -> Option<u32> {
        self.slab.find(self.slab.hash(*key), key)
    }

    #[inline]
    pub(crate) fn get(&self, idx: u32) -> &V {
        &self.slab.get(idx).value
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, idx: u32) -> &mut V {
        &mut self.slab.get_mut(idx).value
    }

    /// The least recently used entry's index.
    pub(crate) fn oldest(&self) -> Option<u32> {
        (self.order.head != NIL).then_some(self.order.head)
    }

    /// Remove an entry by index.
    pub(crate) fn remove(&mut self, idx: u32) -> Option<(K, V)> {
        if !self.slab.try_get(idx)?.live {
            return None;
        }
        self.slab.unindex(idx);
        self.order.unlink(&mut self.slab, idx);
        self.slab.release(idx);
        let e = self.slab.get_mut(idx);
        e.live = false;
        Some((e.key, std::mem::take(&mut e.value)))
    }
}
