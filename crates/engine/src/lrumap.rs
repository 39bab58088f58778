//! A bounded map with least-recently-used order: slab storage, a `HashTable` of slab indices,
//! and an intrusive list. Used for the detector's host, pair and endpoint state.
//!
//! The slab, the index and the free list are reserved for the cap when the map is made, so a
//! full map never grows (a growing hash table holds its old and new arrays at once): what a map
//! costs is [`LruMap::bytes_for`] of its cap (see [`crate::memory`]).

use std::hash::Hash;

use ahash::RandomState;
use hashbrown::HashTable;

use crate::lru::{LinkStore, Links, List, NIL};

pub(crate) struct Entry<K, V> {
    key: K,
    value: V,
    links: Links,
    live: bool,
}

struct Slab<K, V>(Vec<Entry<K, V>>);

impl<K, V> LinkStore for Slab<K, V> {
    #[inline]
    fn links(&mut self, idx: u32) -> &mut Links {
        &mut self.0[idx as usize].links
    }
}

/// A map of at most `cap` entries; inserting into a full map evicts the least recently used.
pub(crate) struct LruMap<K, V> {
    hasher: RandomState,
    table: HashTable<u32>,
    slab: Slab<K, V>,
    free: Vec<u32>,
    order: List,
    cap: usize,
    pub(crate) evicted: u64,
}

impl<K: Hash + Eq + Copy, V: Default> LruMap<K, V> {
    pub(crate) fn new(cap: usize, hasher: RandomState) -> Self {
        let cap = cap.max(1);
        let mut map = Self {
            hasher,
            table: HashTable::new(),
            slab: Slab(Vec::new()),
            free: Vec::new(),
            order: List::default(),
            cap,
            evicted: 0,
        };
        map.reserve(cap);
        map
    }

    /// Reserve room for `cap` entries (see [`crate::memory::reserve_slab_index`]).
    fn reserve(&mut self, cap: usize) {
        let hasher = &self.hasher;
        crate::memory::reserve_slab_index(
            &mut self.table,
            &mut self.slab.0,
            &mut self.free,
            cap,
            |e| hasher.hash_one(e.key),
        );
    }

    /// Heap bytes of a map with this cap: slab entries, index (one `u32` and one control byte
    /// per hash bucket) and free list, all reserved up front.
    pub(crate) fn bytes_for(cap: usize) -> usize {
        let cap = cap.max(1);
        cap * (std::mem::size_of::<Entry<K, V>>() + std::mem::size_of::<u32>())
            + crate::memory::index_bytes(cap, std::mem::size_of::<u32>())
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// A new cap (a config reload): a lower one takes effect as entries arrive; a higher one
    /// is reserved now.
    pub(crate) fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
        self.reserve(self.cap);
    }

    /// Index of `key`, moved to most recently used; inserts `make()` if absent (evicting the
    /// least recently used entry at the cap, handed to `on_evict`). Returns `(index, inserted)`.
    pub(crate) fn upsert(
        &mut self,
        key: K,
        make: impl FnOnce() -> V,
        mut on_evict: impl FnMut(K, V),
    ) -> (u32, bool) {
        let hash = self.hasher.hash_one(key);
        let slab = &self.slab.0;
        if let Some(&idx) = self.table.find(hash, |&i| slab[i as usize].key == key) {
            self.order.move_to_back(&mut self.slab, idx);
            return (idx, false);
        }
        if self.table.len() >= self.cap {
            if let Some((k, v)) = self.pop_oldest() {
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
        let idx = match self.free.pop() {
            Some(i) => {
                self.slab.0[i as usize] = entry;
                i
            }
            None => {
                self.slab.0.push(entry);
                (self.slab.0.len() - 1) as u32
            }
        };
        self.order.push_back(&mut self.slab, idx);
        let slab = &self.slab.0;
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, idx, |&i| hasher.hash_one(slab[i as usize].key));
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
            let e = self.slab.0.get(idx as usize)?;
            idx = e.links.next;
            Some((&e.key, &e.value))
        })
    }

    /// The key at `idx`, if that slot is live.
    #[inline]
    pub(crate) fn key_at(&self, idx: u32) -> Option<&K> {
        self.slab
            .0
            .get(idx as usize)
            .filter(|e| e.live)
            .map(|e| &e.key)
    }

    /// Mark the live entry at `idx` most recently used.
    #[inline]
    pub(crate) fn touch(&mut self, idx: u32) {
        self.order.move_to_back(&mut self.slab, idx);
    }

    /// Look up without changing the order.
    pub(crate) fn find(&self, key: &K) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let slab = &self.slab.0;
        self.table
            .find(hash, |&i| slab[i as usize].key == *key)
            .copied()
    }

    #[inline]
    pub(crate) fn get(&self, idx: u32) -> &V {
        &self.slab.0[idx as usize].value
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, idx: u32) -> &mut V {
        &mut self.slab.0[idx as usize].value
    }

    /// The least recently used entry's index.
    pub(crate) fn oldest(&self) -> Option<u32> {
        (self.order.head != NIL).then_some(self.order.head)
    }

    /// Remove an entry by index.
    pub(crate) fn remove(&mut self, idx: u32) -> Option<(K, V)> {
        let e = self.slab.0.get(idx as usize)?;
        if !e.live {
            return None;
        }
        let key = e.key;
        let hash = self.hasher.hash_one(key);
        if let Ok(entry) = self.table.find_entry(hash, |&i| i == idx) {
            entry.remove();
        }
        self.order.unlink(&mut self.slab, idx);
        let e = &mut self.slab.0[idx as usize];
        e.live = false;
        let value = std::mem::take(&mut e.value);
        self.free.push(idx);
        Some((key, value))
    }

    fn pop_oldest(&mut self) -> Option<(K, V)> {
        let head = self.oldest()?;
        let e = &self.slab.0[head as usize];
        let key = e.key;
        let hash = self.hasher.hash_one(key);
        if let Ok(entry) = self.table.find_entry(hash, |&i| i == head) {
            entry.remove();
        }
        self.order.unlink(&mut self.slab, head);
        self.free.push(head);
        let e = &mut self.slab.0[head as usize];
        e.live = false;
        Some((key, std::mem::take(&mut e.value)))
    }
}
