//! A reusable byte buffer for one direction of a session: bytes are appended
//! at the end by socket reads or copies and taken from the front by writes or
//! the message scanner, without allocating once it has grown to its working
//! size.

/// Bytes from `start` to `end` of `data` are live. `data` is always fully
/// initialised so reads can go straight into its spare tail.
pub struct Buffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
    initial: usize,
}

/// A buffer grown past this many bytes is given back once it drains, so that
/// one large result does not pin memory for the rest of an idle session.
const SHRINK_ABOVE: usize = 256 * 1024;

impl Buffer {
    pub fn with_capacity(initial: usize) -> Self {
        Buffer {
            data: Vec::new(),
            start: 0,
            end: 0,
            initial,
        }
    }

    /// The live bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops `n` bytes from the front.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.data.len() > SHRINK_ABOVE {
                self.data = Vec::new();
            }
        }
    }

    /// Free space at the end, at least `min` bytes, moving live bytes to the
    /// front or growing the buffer as needed.
    pub fn spare_mut(&mut self, min: usize) -> &mut [u8] {
        self.reserve(min);
        let end = self.end;
        &mut self.data[end..]
    }

    /// Records that `n` bytes were written into the slice from `spare_mut`.
    #[inline]
    pub fn commit(&mut self, n: usize) {
        self.end += n;
        debug_assert!(self.end <= self.data.len());
    }

    /// Appends a copy of `bytes`.
    #[inline]
    pub fn extend(&mut self, bytes: &[u8]) {
        self.spare_mut(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// Makes room for `additional` more bytes after the live ones.
    pub fn reserve(&mut self, additional: usize) {
        if self.data.len() - self.end >= additional {
            return;
        }
        let live = self.len();
        if self.start > 0 && self.data.len() - live >= additional {
            self.data.copy_within(self.start..self.end, 0);
        } else {
            let want = (live + additional)
                .max(self.initial)
                .max(self.data.len() * 2);
            let mut grown = vec![0u8; want];
            grown[..live].copy_from_slice(&self.data[self.start..self.end]);
            self.data = grown;
        }
        self.start = 0;
        self.end = live;
    }

    /// Inserts `bytes` at `at` (relative to the live bytes).
    pub fn insert(&mut self, at: usize, bytes: &[u8]) {
        let len = self.len();
        debug_assert!(at <= len);
        self.reserve(bytes.len());
        let abs = self.start + at;
        self.data.copy_within(abs..self.end, abs + bytes.len());
        self.data[abs..abs + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Removes `n` bytes at `at` (relative to the live bytes).
    pub fn remove(&mut self, at: usize, n: usize) {
        debug_assert!(at + n <= self.len());
        let abs = self.start + at;
        self.data.copy_within(abs + n..self.end, abs);
        self.end -= n;
    }

    /// Bytes of memory this buffer holds.
    pub fn capacity(&self) -> usize {
        self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_consume_and_reuse() {
        let mut b = Buffer::with_capacity(8);
        b.extend(b"hello");
        b.extend(b"world");
        assert_eq!(b.bytes(), b"helloworld");
        b.consume(5);
        assert_eq!(b.bytes(), b"world");
        let cap = b.capacity();
        b.extend(b"!!");
        assert_eq!(b.bytes(), b"world!!");
        assert_eq!(b.capacity(), cap, "room at the front is reused");
        b.consume(7);
        assert!(b.is_empty());
    }

    #[test]
    fn insert_and_remove() {
        let mut b = Buffer::with_capacity(4);
        b.extend(b"abef");
        b.insert(2, b"cd");
        assert_eq!(b.bytes(), b"abcdef");
        b.remove(1, 2);
        assert_eq!(b.bytes(), b"adef");
    }

    #[test]
    fn large_buffers_are_released_when_drained() {
        let mut b = Buffer::with_capacity(16);
        b.extend(&vec![1u8; SHRINK_ABOVE + 1]);
        b.consume(SHRINK_ABOVE + 1);
        assert_eq!(b.capacity(), 0);
    }
}
