//! Byte buffers used again, chunk after chunk.
//!
//! A chunk's bytes (the splitter's cut, a worker's JSON Lines) are megabytes: allocated fresh
//! each time, every page of them is faulted in and zeroed by the kernel, then handed back when
//! the chunk is done — a quarter of a million page faults for a gigabyte of JSON Lines. Buffers
//! given back here are taken again instead, already resident. At most `keep` wait here, so
//! memory stays what the chunks in flight need.

use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Buffers {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    keep: usize,
}

impl Buffers {
    pub fn new(keep: usize) -> Buffers {
        Buffers {
            free: Arc::new(Mutex::new(Vec::new())),
            keep,
        }
    }

    /// An empty buffer with room for at least `capacity` bytes: the largest one given back, or
    /// a new one.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let reused = self.free.lock().map(|mut free| free.pop()).ok().flatten();
        let mut buffer = reused.unwrap_or_default();
        buffer.reserve(capacity);
        buffer
    }

    /// `buffer` for a later [`take`](Self::take) (dropped when `keep` already wait).
    pub fn give(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        if let Ok(mut free) = self.free.lock() {
            if free.len() < self.keep {
                free.push(buffer);
                free.sort_unstable_by_key(Vec::capacity); // the largest is taken first
            }
        }
    }

    /// How many buffers wait to be taken again.
    pub fn waiting(&self) -> usize {
        self.free.lock().map(|free| free.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_empty_with_its_room() {
        let buffers = Buffers::new(2);
        let mut first = buffers.take(1000);
        first.extend_from_slice(b"abc");
        let address = first.as_ptr();
        buffers.give(first);
        let again = buffers.take(10);
        assert_eq!(again.as_ptr(), address);
        assert!(again.is_empty() && again.capacity() >= 1000);
    }

    #[test]
    fn the_largest_waiting_buffer_is_taken_first() {
        let buffers = Buffers::new(3);
        buffers.give(Vec::with_capacity(10));
        buffers.give(Vec::with_capacity(5000));
        buffers.give(Vec::with_capacity(100));
        assert!(buffers.take(1).capacity() >= 5000);
    }

    #[test]
    fn no_more_than_keep_buffers_wait() {
        let buffers = Buffers::new(2);
        for _ in 0..5 {
            buffers.give(Vec::with_capacity(64));
        }
        assert_eq!(buffers.waiting(), 2);
        let taken: Vec<_> = (0..3).map(|_| buffers.take(64)).collect();
        assert!(taken.iter().all(|b| b.capacity() >= 64));
        assert_eq!(buffers.waiting(), 0);
    }
}
