//! Earliest-deadline-first scheduler: Envoy's weighted round robin.
//!
//! Each host has a deadline `current + 1/weight`. A pick pops the earliest
//! deadline (ties: the earlier insertion), advances `current` to it, and
//! re-inserts the host with `deadline + 1/weight`, the weight being read again
//! at re-insertion (so a weight that changes, e.g. during slow start, takes
//! effect from the host's next turn, as in Envoy's `EdfScheduler`). Over a
//! period each host is picked in proportion to its weight, and the picks of a
//! heavy host are spread out rather than bunched.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(Clone, Copy, Debug)]
struct Entry {
    deadline: f64,
    order: u64,
    host: u32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest deadline,
    /// then the earliest insertion.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .deadline
            .total_cmp(&self.deadline)
            .then_with(|| other.order.cmp(&self.order))
    }
}

/// An EDF schedule over host indices.
#[derive(Clone, Debug, Default)]
pub struct Edf {
    heap: BinaryHeap<Entry>,
    current: f64,
    order: u64,
}

impl Edf {
    /// A schedule over `(host, weight)` pairs; hosts with a non-positive
    /// weight are left out.
    pub fn new(entries: impl IntoIterator<Item = (u32, f64)>) -> Edf {
        let mut edf = Edf::default();
        for (host, w) in entries {
            edf.add(host, w);
        }
        edf
    }

    fn add(&mut self, host: u32, weight: f64) {
        if weight > 0.0 && weight.is_finite() {
            self.heap.push(Entry {
                deadline: self.current + 1.0 / weight,
                order: self.order,
                host,
            });
            self.order += 1;
        }
    }

    /// Whether the schedule holds no host.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The next host; `weight(host)` gives its weight for re-insertion.
    pub fn pick(&mut self, mut weight: impl FnMut(u32) -> f64) -> Option<u32> {
        let e = self.heap.pop()?;
        self.current = e.deadline;
        self.add(e.host, weight(e.host));
        Some(e.host)
    }

    /// The host the next [`pick`](Self::pick) would return, without picking.
    pub fn peek(&self) -> Option<u32> {
        self.heap.peek().map(|e| e.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_one_two_three_give_periodic_counts() {
        let w = [1.0, 2.0, 3.0];
        let mut edf = Edf::new(w.iter().enumerate().map(|(i, &w)| (i as u32, w)));
        let seq: Vec<u32> = (0..12)
            .map(|_| edf.pick(|h| w[h as usize]).unwrap())
            .collect();
        // Deadlines: h0 1, 2; h1 .5, 1, 1.5, 2; h2 .33, .67, 1, 1.33, 1.67, 2.
        // Ties at 1.0 and 2.0 go to the earlier insertion.
        assert_eq!(seq[..6], [2, 1, 2, 0, 1, 2]);
        let mut counts = [0; 3];
        for h in seq {
            counts[h as usize] += 1;
        }
        assert_eq!(counts, [2, 4, 6]);
    }

    proptest::proptest! {
        /// With integer weights the schedule is periodic: every window of
        /// Σw consecutive picks holds each host exactly w times, so the
        /// sequence repeats with period Σw.
        #[test]
        fn schedule_is_periodic_with_exact_counts(w in proptest::collection::vec(1u32..8, 1..7)) {
            let total: u32 = w.iter().sum();
            let mut edf = Edf::new(w.iter().enumerate().map(|(i, &x)| (i as u32, f64::from(x))));
            let seq: Vec<u32> = (0..3 * total)
                .map(|_| edf.pick(|h| f64::from(w[h as usize])).unwrap())
                .collect();
            for period in seq.chunks(total as usize) {
                let mut counts = vec![0u32; w.len()];
                for &h in period {
                    counts[h as usize] += 1;
                }
                proptest::prop_assert_eq!(&counts, &w);
            }
        }
    }

    #[test]
    fn zero_weight_hosts_are_never_picked() {
        let mut edf = Edf::new([(0, 0.0), (1, 1.0)]);
        for _ in 0..5 {
            assert_eq!(edf.pick(|_| 1.0), Some(1));
        }
        assert!(Edf::new([(0, 0.0)]).is_empty());
    }
}
