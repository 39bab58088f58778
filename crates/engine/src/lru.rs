//! Intrusive doubly linked lists over slab indices (O(1) move-to-back and pop-front).
//!
//! Each flow sits in exactly one list; the list is ordered by last-seen packet time because
//! every packet moves its flow to the back. The head is therefore the flow idle the longest.

/// "No entry" index.
pub(crate) const NIL: u32 = u32::MAX;

/// Links stored inside each slab entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Links {
    pub(crate) prev: u32,
    pub(crate) next: u32,
}

impl Default for Links {
    fn default() -> Self {
        Self {
            prev: NIL,
            next: NIL,
        }
    }
}

/// Head and tail of one list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct List {
    pub(crate) head: u32,
    pub(crate) tail: u32,
}

impl Default for List {
    fn default() -> Self {
        Self {
            head: NIL,
            tail: NIL,
        }
    }
}

/// Access to the links of slab entries.
pub(crate) trait LinkStore {
    fn links(&mut self, idx: u32) -> &mut Links;
}

impl List {
    /// Append `idx` (currently unlinked) at the back.
    #[inline]
    pub(crate) fn push_back<S: LinkStore>(&mut self, store: &mut S, idx: u32) {
        let tail = self.tail;
        {
            let l = store.links(idx);
            l.prev = tail;
            l.next = NIL;
        }
        if tail == NIL {
            self.head = idx;
        } else {
            store.links(tail).next = idx;
        }
        self.tail = idx;
    }

    /// Remove `idx` (which must be in this list).
    #[inline]
    pub(crate) fn unlink<S: LinkStore>(&mut self, store: &mut S, idx: u32) {
        let Links { prev, next } = *store.links(idx);
        if prev == NIL {
            self.head = next;
        } else {
            store.links(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            store.links(next).prev = prev;
        }
        *store.links(idx) = Links::default();
    }

    /// Move `idx` (which must be in this list) to the back; free when it is already there,
    /// as it is for consecutive packets of one flow.
    #[inline]
    pub(crate) fn move_to_back<S: LinkStore>(&mut self, store: &mut S, idx: u32) {
        if self.tail != idx {
            self.unlink(store, idx);
            self.push_back(store, idx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Store(Vec<Links>);
    impl LinkStore for Store {
        fn links(&mut self, idx: u32) -> &mut Links {
            &mut self.0[idx as usize]
        }
    }

    fn collect(list: &List, store: &mut Store) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = list.head;
        while cur != NIL {
            out.push(cur);
            cur = store.links(cur).next;
        }
        out
    }

    #[test]
    fn push_unlink_and_move_to_back() {
        let mut store = Store(vec![Links::default(); 4]);
        let mut list = List::default();
        for i in 0..4 {
            list.push_back(&mut store, i);
        }
        assert_eq!(collect(&list, &mut store), [0, 1, 2, 3]);
        list.unlink(&mut store, 1);
        list.push_back(&mut store, 1);
        assert_eq!(collect(&list, &mut store), [0, 2, 3, 1]);
        list.unlink(&mut store, 0);
        list.unlink(&mut store, 1);
        assert_eq!(collect(&list, &mut store), [2, 3]);
        assert_eq!((list.head, list.tail), (2, 3));
        list.unlink(&mut store, 2);
        list.unlink(&mut store, 3);
        assert_eq!((list.head, list.tail), (NIL, NIL));
    }
}
