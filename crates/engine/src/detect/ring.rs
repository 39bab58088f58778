//! [`Ring`]: the last `N` values pushed, in a fixed array (no allocation; `N` at most 255).
//! A pair keeps its recent exchanges and its recent burst starts in one.

/// The last `N` values pushed, oldest first when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ring<T, const N: usize> {
    items: [T; N],
    len: u8,
    /// Where the next value goes.
    pos: u8,
}

impl<T: Copy + Default, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        const { assert!(N > 0 && N <= u8::MAX as usize) };
        Self {
            items: [T::default(); N],
            len: 0,
            pos: 0,
        }
    }
}

impl<T: Copy + Default, const N: usize> Ring<T, N> {
    /// Keep `v`, dropping the oldest value when full.
    #[inline]
    pub fn push(&mut self, v: T) {
        let i = usize::from(self.pos);
        self.items[i] = v;
        self.pos = ((i + 1) % N) as u8;
        self.len = (usize::from(self.len) + 1).min(N) as u8;
    }

    /// Values kept (at most `N`).
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The newest value.
    #[inline]
    pub fn last(&self) -> Option<T> {
        (self.len > 0).then(|| self.items[(usize::from(self.pos) + N - 1) % N])
    }

    /// The values kept, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        let n = self.len();
        let first = (usize::from(self.pos) + N - n) % N;
        (0..n).map(move |k| self.items[(first + k) % N])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_n_oldest_first() {
        let mut r = Ring::<u32, 3>::default();
        assert_eq!(r.len(), 0);
        assert_eq!(r.last(), None);
        r.push(1);
        r.push(2);
        assert_eq!(r.iter().collect::<Vec<_>>(), [1, 2]);
        for v in 3..=7 {
            r.push(v);
        }
        assert_eq!(r.iter().collect::<Vec<_>>(), [5, 6, 7]);
        assert_eq!((r.len(), r.last()), (3, Some(7)));
    }
}
