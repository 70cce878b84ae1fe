//! The event queue: a binary min-heap ordered by (time, sequence number).
//!
//! Each entry's key packs the time into the high 64 bits of a `u128` and
//! the insertion sequence number into the low 64, so one integer
//! comparison orders by time and breaks ties by insertion order (instead
//! of comparing a tuple field by field).
//!
//! Events due at the current time (zero-delay hops: a sidecar with no
//! latency configured, a network without latency) skip the heap: they go
//! to a FIFO, which is in key order by construction (one time, rising
//! sequence numbers). A pop takes the least key of the FIFO's front, the
//! heap's top and the side slot, so the order is exactly the heap's alone.
//! On the single-hop benchmark two of a request's three queued events are
//! due at once, and heap work was a fifth of the run.

use std::collections::{BinaryHeap, VecDeque};

use meshsim_core::Time;

/// A min-heap of `(time, seq, event)`; equal times pop in insertion order.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    /// One entry kept beside the heap (see [`EventQueue::push_side`]).
    side: Option<Entry<E>>,
    /// Entries pushed for the time of the latest pop: all of one time.
    now: VecDeque<Entry<E>>,
    /// The time of the latest pop.
    current: u64,
    seq: u64,
}

/// Ordered by key alone, reversed (std's heap is a max-heap); keys are
/// unique, so the order is total.
#[derive(Debug)]
struct Entry<E> {
    key: u128,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.key.cmp(&self.key)
    }
}

impl<E> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            side: None,
            now: VecDeque::new(),
            current: 0,
            seq: 0,
        }
    }

    /// Schedules `event` at `at`.
    pub fn push(&mut self, at: Time, event: E) {
        let key = (u128::from(at.0) << 64) | u128::from(self.seq);
        self.seq += 1;
        let e = Entry { key, event };
        // The FIFO holds one time only, so it stays in key order.
        if at.0 == self.current && self.now.back().is_none_or(|b| b.key >> 64 == key >> 64) {
            self.now.push_back(e);
        } else {
            self.heap.push(e);
        }
    }

    /// Schedules `event` at `at` in the side slot: for a stream with one
    /// event pending at a time (the next open-loop arrival), which then
    /// costs a comparison instead of a heap push and pop. The order is the
    /// same as with [`EventQueue::push`]: the key carries the same
    /// sequence number. A side event still pending moves into the heap.
    pub fn push_side(&mut self, at: Time, event: E) {
        let key = (u128::from(at.0) << 64) | u128::from(self.seq);
        self.seq += 1;
        if let Some(old) = self.side.replace(Entry { key, event }) {
            self.heap.push(old);
        }
    }

    /// The earliest event.
    pub fn pop(&mut self) -> Option<(Time, E)> {
        if let Some(f) = self.now.front() {
            let before_heap = self.heap.peek().is_none_or(|h| f.key < h.key);
            let before_side = self.side.as_ref().is_none_or(|s| f.key < s.key);
            if before_heap && before_side {
                return self.now.pop_front().map(|e| self.popped(e));
            }
        }
        let side_first = match (&self.side, self.heap.peek()) {
            (Some(s), Some(h)) => s.key < h.key,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let e = if side_first {
            self.side.take()
        } else {
            self.heap.pop()
        };
        e.map(|e| self.popped(e))
    }

    fn popped(&mut self, e: Entry<E>) -> (Time, E) {
        let t = (e.key >> 64) as u64;
        self.current = t;
        (Time(t), e.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_pop_in_insertion_order() {
        let mut q = EventQueue::new();
        q.push(Time(5), 'a');
        q.push(Time(1), 'b');
        q.push(Time(5), 'c');
        q.push(Time(1), 'd');
        let order: Vec<char> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, ['b', 'd', 'a', 'c']);
    }

    #[test]
    fn the_side_slot_keeps_insertion_order_on_ties() {
        let mut q = EventQueue::new();
        q.push(Time(5), 'a');
        q.push_side(Time(5), 'b');
        q.push(Time(5), 'c');
        q.push(Time(1), 'd');
        // A second side event moves the first into the heap.
        q.push_side(Time(3), 'e');
        let order: Vec<char> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, ['d', 'e', 'a', 'b', 'c']);
    }

    /// Interleaved pushes and pops against a sorted model. Times are
    /// drawn near the latest pop's (often equal to it, sometimes before
    /// it), so the FIFO for the current time, the side slot and the heap
    /// all hold entries at once: every pop must still return the least
    /// (time, insertion order) pending.
    #[test]
    fn pops_in_order_against_a_model() {
        let mut x = 7u64;
        let mut draw = |n: u64| {
            x = meshsim_results::splitmix64(x);
            x % n
        };
        let mut q = EventQueue::new();
        let mut model: Vec<(u64, u32)> = Vec::new();
        let (mut id, mut current, mut from_fifo) = (0u32, 0u64, 0u32);
        for _ in 0..20_000 {
            if model.is_empty() || draw(100) < 55 {
                let t = match draw(4) {
                    0 | 1 => current,
                    2 => current + draw(5),
                    _ => current.saturating_sub(draw(3)),
                };
                if draw(10) == 0 {
                    q.push_side(Time(t), id);
                } else {
                    q.push(Time(t), id);
                }
                model.push((t, id));
                id += 1;
            } else {
                // Ids grow with insertion, so (time, id) is the order.
                let k = (0..model.len()).min_by_key(|&k| model[k]).unwrap();
                let want = model.swap_remove(k);
                from_fifo += u32::from(!q.now.is_empty());
                assert_eq!(q.pop().map(|(t, e)| (t.0, e)), Some(want));
                current = want.0;
            }
        }
        model.sort_unstable();
        for want in model {
            assert_eq!(q.pop().map(|(t, e)| (t.0, e)), Some(want));
        }
        assert_eq!(q.pop(), None);
        // The FIFO was in use: the test exercised it.
        assert!(from_fifo > 1_000, "{from_fifo}");
    }
}
