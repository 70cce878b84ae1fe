//! The event queue: a binary min-heap ordered by (time, sequence number).
//!
//! Each entry's key packs the time into the high 64 bits of a `u128` and
//! the insertion sequence number into the low 64, so one integer
//! comparison orders by time and breaks ties by insertion order (instead
//! of comparing a tuple field by field).

use std::collections::BinaryHeap;

use meshsim_core::Time;

/// A min-heap of `(time, seq, event)`; equal times pop in insertion order.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    /// One entry kept beside the heap (see [`EventQueue::push_side`]).
    side: Option<Entry<E>>,
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
            seq: 0,
        }
    }

    /// Schedules `event` at `at`.
    pub fn push(&mut self, at: Time, event: E) {
        let key = (u128::from(at.0) << 64) | u128::from(self.seq);
        self.seq += 1;
        self.heap.push(Entry { key, event });
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
        e.map(|e| (Time((e.key >> 64) as u64), e.event))
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
}
