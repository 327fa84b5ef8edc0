//! A fixed-capacity single-thread sample FIFO used between processing stages.
//! Never reallocates after construction.

/// A FIFO of `f32` samples with a capacity fixed at construction.
#[derive(Debug, Clone)]
pub struct Fifo {
    buf: Vec<f32>,
    start: usize,
    len: usize,
}

impl Fifo {
    /// An empty FIFO holding at most `capacity` samples. Setup only.
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: vec![0.0; capacity],
            start: 0,
            len: 0,
        }
    }

    /// Samples currently stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no samples are stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left, samples.
    pub fn free(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Discards everything.
    pub fn clear(&mut self) {
        self.start = 0;
        self.len = 0;
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.start + self.len, 0);
            self.start = 0;
        }
    }

    /// Appends up to `free()` samples of `data`; returns how many were taken.
    pub fn push(&mut self, data: &[f32]) -> usize {
        let n = data.len().min(self.free());
        if self.start + self.len + n > self.buf.len() {
            self.compact();
        }
        let end = self.start + self.len;
        self.buf[end..end + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    /// Appends `n` zeros (or fewer if full); returns how many were added.
    pub fn push_zeros(&mut self, n: usize) -> usize {
        let n = n.min(self.free());
        if self.start + self.len + n > self.buf.len() {
            self.compact();
        }
        let end = self.start + self.len;
        self.buf[end..end + n].fill(0.0);
        self.len += n;
        n
    }

    /// The stored samples, oldest first.
    pub fn as_slice(&self) -> &[f32] {
        &self.buf[self.start..self.start + self.len]
    }

    /// The stored samples, oldest first, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.buf[self.start..self.start + self.len]
    }

    /// Removes `n` samples (at most `len()`) from the front.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.start += n;
        self.len -= n;
        if self.len == 0 {
            self.start = 0;
        }
    }

    /// Moves up to `out.len()` samples into `out`; returns how many.
    pub fn pop_into(&mut self, out: &mut [f32]) -> usize {
        let n = out.len().min(self.len);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.consume(n);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_and_capacity() {
        let mut f = Fifo::new(5);
        assert_eq!(f.push(&[1.0, 2.0, 3.0]), 3);
        let mut out = [0.0; 2];
        assert_eq!(f.pop_into(&mut out), 2);
        assert_eq!(out, [1.0, 2.0]);
        assert_eq!(f.push(&[4.0, 5.0, 6.0, 7.0, 8.0]), 4);
        assert_eq!(f.as_slice(), &[3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(f.push_zeros(3), 0);
        f.consume(4);
        assert_eq!(f.push_zeros(2), 2);
        assert_eq!(f.as_slice(), &[7.0, 0.0, 0.0]);
    }
}
