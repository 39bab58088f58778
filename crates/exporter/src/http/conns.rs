//! The exporter's connection table: at most a fixed number of connections are open, and when
//! the table is full the least recently active one is closed to make room for the newcomer.
//! A crowd of idle connections therefore cannot lock a scraper out: each new connection pushes
//! the stalest one out, and a connection that is serving a request was active last.
//!
//! Activity is a logical clock (one tick per admission or request), so the order is strict and
//! needs no wall clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// The table shared by the accept loop and the connections' services.
#[derive(Debug)]
pub(super) struct Table {
    cap: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Logical clock: the next activity tick.
    clock: u64,
    /// Next connection id.
    next_id: u64,
    /// Open connections: their last activity and how to close them.
    open: HashMap<u64, Slot>,
    /// Last activity tick -> connection id, oldest first.
    by_activity: BTreeMap<u64, u64>,
}

#[derive(Debug)]
struct Slot {
    last: u64,
    close: oneshot::Sender<()>,
}

impl Inner {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Close the least recently active connection; false when none is open.
    fn evict_oldest(&mut self) -> bool {
        let Some((_, id)) = self.by_activity.pop_first() else {
            return false;
        };
        if let Some(slot) = self.open.remove(&id) {
            // The connection may be ending on its own already: nothing to tell it then.
            let _ = slot.close.send(());
        }
        true
    }
}

/// One admitted connection; dropping it removes the connection from the table.
#[derive(Debug)]
pub(super) struct Handle {
    table: Arc<Table>,
    id: u64,
}

impl Table {
    /// A table of at most `cap` (at least 1) connections.
    pub(super) fn new(cap: usize) -> Arc<Table> {
        Arc::new(Table {
            cap: cap.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The table holds no invariant a panicking holder could break half-way that matters
        // more than serving: go on with it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admit a new connection, closing the least recently active ones while the table is
    /// full. Returns the connection's handle, the signal that closes it, and how many
    /// connections were closed to make room.
    pub(super) fn admit(self: &Arc<Self>) -> (Handle, oneshot::Receiver<()>, usize) {
        let (close, closed) = oneshot::channel();
        let mut inner = self.lock();
        let mut evicted = 0;
        while inner.open.len() >= self.cap && inner.evict_oldest() {
            evicted += 1;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let last = inner.tick();
        inner.open.insert(id, Slot { last, close });
        inner.by_activity.insert(last, id);
        drop(inner);
        let handle = Handle {
            table: Arc::clone(self),
            id,
        };
        (handle, closed, evicted)
    }

    /// Close the least recently active connection (to free a file descriptor); false when
    /// none is open.
    pub(super) fn evict_oldest(&self) -> bool {
        self.lock().evict_oldest()
    }

    /// Connections open.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().open.len()
    }
}

impl Handle {
    /// The connection is active (a request arrived): it becomes the last to be evicted.
    pub(super) fn touch(&self) {
        let mut inner = self.table.lock();
        let now = inner.tick();
        let Some(old) = inner.open.get_mut(&self.id).map(|slot| {
            let old = slot.last;
            slot.last = now;
            old
        }) else {
            return; // already evicted
        };
        inner.by_activity.remove(&old);
        inner.by_activity.insert(now, self.id);
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        if let Some(slot) = inner.open.remove(&self.id) {
            inner.by_activity.remove(&slot.last);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn a_full_table_closes_the_least_recently_active_connection() {
        let table = Table::new(3);
        let (a, mut a_closed, _) = table.admit();
        let (b, mut b_closed, _) = table.admit();
        let (_c, mut c_closed, _) = table.admit();
        // `a` serves a request: `b` is now the stalest.
        a.touch();
        let (_d, _, evicted) = table.admit();
        assert_eq!(evicted, 1);
        assert!(b_closed.try_recv().is_ok(), "b closed");
        assert!(a_closed.try_recv().is_err() && c_closed.try_recv().is_err());
        assert_eq!(table.len(), 3);
        // The evicted connection's handle goes away without disturbing the others.
        drop(b);
        assert_eq!(table.len(), 3);
        // A connection that ends on its own frees its place.
        drop(a);
        assert_eq!(table.len(), 2);
        let (_e, _, evicted) = table.admit();
        assert_eq!(evicted, 0);
        assert!(table.evict_oldest());
        assert!(c_closed.try_recv().is_ok(), "c was the oldest left");
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn an_empty_table_has_nothing_to_evict() {
        let table = Table::new(0);
        assert!(!table.evict_oldest());
        let (_a, _, evicted) = table.admit();
        assert_eq!(evicted, 0);
        let (_b, _, evicted) = table.admit();
        assert_eq!(evicted, 1, "a cap of 0 is taken as 1");
    }
}
