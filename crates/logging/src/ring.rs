//! The bounded queue of non-blocking mode: when full, the oldest records go, and are counted.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::record::OwnedRecord;

/// What a [`Ring`] dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Records dropped.
    pub records: u64,
    /// Their bytes.
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<OwnedRecord>,
    bytes: usize,
    closed: bool,
    dropped: Dropped,
}

/// A queue of records holding at most `capacity` bytes of record data (and always at least
/// the newest record), shared by one producer and one consumer.
#[derive(Debug)]
pub struct Ring {
    capacity: usize,
    state: Mutex<State>,
    ready: Condvar,
}

impl Ring {
    /// A ring holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> Ring {
        Ring {
            capacity,
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a record, dropping the oldest ones while the ring would be over capacity.
    pub fn push(&self, record: OwnedRecord) {
        let mut s = self.lock();
        let len = record.bytes.len();
        while !s.queue.is_empty() && s.bytes + len > self.capacity {
            if let Some(old) = s.queue.pop_front() {
                s.bytes -= old.bytes.len();
                s.dropped.records += 1;
                s.dropped.bytes += old.bytes.len() as u64;
            }
        }
        s.bytes += len;
        s.queue.push_back(record);
        drop(s);
        self.ready.notify_one();
    }

    /// Takes the oldest record without waiting.
    pub fn try_pop(&self) -> Option<OwnedRecord> {
        let mut s = self.lock();
        let record = s.queue.pop_front()?;
        s.bytes -= record.bytes.len();
        Some(record)
    }

    /// Takes the oldest record, waiting for one; `None` once the ring is closed and empty.
    pub fn pop(&self) -> Option<OwnedRecord> {
        let mut s = self.lock();
        loop {
            if let Some(record) = s.queue.pop_front() {
                s.bytes -= record.bytes.len();
                return Some(record);
            }
            if s.closed {
                return None;
            }
            s = self
                .ready
                .wait(s)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// No more records will come.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// What was dropped so far.
    pub fn dropped(&self) -> Dropped {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::{Dropped, Ring};
    use crate::record::{OwnedRecord, Stream};
    use std::time::SystemTime;

    fn rec(b: &[u8]) -> OwnedRecord {
        OwnedRecord {
            stream: Stream::Stdout,
            time: SystemTime::now(),
            bytes: b.to_vec(),
            partial: false,
        }
    }

    #[test]
    fn full_ring_drops_the_oldest_and_counts() {
        let ring = Ring::new(10);
        for b in [&b"aaaa"[..], b"bbbb", b"cccc", b"dd"] {
            ring.push(rec(b));
        }
        assert_eq!(
            ring.dropped(),
            Dropped {
                records: 1,
                bytes: 4
            }
        );
        ring.close();
        let left: Vec<Vec<u8>> = std::iter::from_fn(|| ring.pop()).map(|r| r.bytes).collect();
        assert_eq!(
            left,
            vec![b"bbbb".to_vec(), b"cccc".to_vec(), b"dd".to_vec()]
        );
        // A record larger than the ring is still kept (alone).
        let ring = Ring::new(2);
        ring.push(rec(b"xyz"));
        assert_eq!(ring.try_pop().map(|r| r.bytes), Some(b"xyz".to_vec()));
    }
}
