//! A fixed-range HDR histogram for the simulator's hot path.
//!
//! The bucket layout is HdrHistogram's (Gil Tene's design, as in the Java
//! original and the `hdrhistogram` crate): `2^m` sub-buckets per bucket,
//! where `2^m` is the least power of two ≥ 2·10^digits, and each bucket
//! after the first covers twice the range of the one before with the upper
//! half of its sub-buckets. Quantiles follow HdrHistogram's definition: the
//! highest value equivalent to the first bucket whose running count reaches
//! `ceil(q · total)` (at least 1); the lowest equivalent value for `q = 0`.
//! A test records the same values into both and checks that every quantile
//! agrees, so result tables are unchanged by the switch.
//!
//! What it leaves out, and why it is faster per record: the lowest
//! discernible value is fixed at 1 (unit magnitude 0), so an index is one
//! `leading_zeros`, one shift and one add; there is no resizing, no min/max
//! (the caller, [`crate::Latency`], keeps exact ones) and no `Option` on
//! the record path. Values above the range are the caller's to clamp.
//!
//! Counts are kept in chunks of 1,024 slots (one bucket's sub-buckets at
//! 3 digits, eight buckets' at 2), each allocated at the first value that
//! falls in it: a service whose latencies span a few doublings holds a few
//! chunks, not the whole range up to an hour (33 chunks at 3 digits). A
//! run with a thousand services keeps a thousand histograms; allocated
//! whole and zeroed (the allocator clears reused memory), they were almost
//! all of its memory.

/// Slots per chunk: a power of two, so a slot's chunk and place in it are
/// a shift and a mask, and the place needs no bounds check.
const CHUNK: usize = 1024;

/// Slot counts in chunks of [`CHUNK`], each allocated on first use.
#[derive(Clone, Debug)]
struct Counts {
    /// Slots in the layout.
    len: usize,
    chunks: Box<[Option<Box<[u64; CHUNK]>>]>,
}

impl Counts {
    fn new(len: usize) -> Counts {
        Counts {
            len,
            chunks: (0..len.div_ceil(CHUNK)).map(|_| None).collect(),
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    fn get(&self, i: usize) -> u64 {
        self.chunks[i / CHUNK].as_ref().map_or(0, |c| c[i % CHUNK])
    }

    /// Every count, in slot order.
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len).map(|i| self.get(i))
    }

    /// The nonzero counts with their slots, in slot order.
    fn nonzero(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.chunks
            .iter()
            .enumerate()
            .filter_map(|(k, c)| c.as_ref().map(|c| (k * CHUNK, c)))
            .flat_map(|(base, c)| c.iter().enumerate().map(move |(j, &x)| (base + j, x)))
            .filter(|&(_, x)| x > 0)
    }

    /// Adds `n` at slot `i`.
    #[inline]
    fn add_at(&mut self, i: usize, n: u64) {
        let chunk = match &mut self.chunks[i / CHUNK] {
            Some(c) => c,
            None => self.allocate(i / CHUNK),
        };
        chunk[i % CHUNK] += n;
    }

    /// Allocates chunk `k` (out of the record path: once per chunk).
    #[cold]
    #[inline(never)]
    fn allocate(&mut self, k: usize) -> &mut Box<[u64; CHUNK]> {
        self.chunks[k].insert(Box::new([0; CHUNK]))
    }

    /// The first slot at which the running count reaches `target`.
    fn reach(&self, target: u64) -> Option<usize> {
        let mut running = 0_u64;
        for (k, c) in self.chunks.iter().enumerate() {
            let Some(c) = c else { continue };
            for (j, &x) in c.iter().enumerate() {
                running += x;
                if running >= target {
                    return Some(k * CHUNK + j);
                }
            }
        }
        None
    }
}

/// Counts over `1..=highest` with `digits` significant decimal digits.
#[derive(Clone, Debug)]
pub(crate) struct Hdr {
    counts: Counts,
    total: u64,
    /// log2 of half the sub-bucket count.
    half_magnitude: u32,
    /// Sub-bucket count − 1: values at most this are in bucket 0.
    sub_mask: u64,
    /// 64 − log2(sub-bucket count): `leading_zeros` of bucket 0's top.
    zeros_base: u32,
    highest: u64,
}

impl Hdr {
    /// An empty histogram for values `1..=highest` (`highest ≥ 2`,
    /// `digits ≤ 5`).
    pub(crate) fn new(highest: u64, digits: u8) -> Hdr {
        assert!(highest >= 2 && digits <= 5, "histogram bounds");
        // Single-unit resolution up to 2·10^digits, rounded up to a power of two.
        let magnitude = (2 * 10_u64.pow(u32::from(digits)))
            .next_power_of_two()
            .trailing_zeros();
        let sub_count = 1_u64 << magnitude;
        // Buckets until the first one whose range passes `highest`.
        let mut buckets = 1_u32;
        let mut untrackable = sub_count;
        while untrackable <= highest {
            if untrackable > u64::MAX / 2 {
                buckets += 1;
                break;
            }
            untrackable <<= 1;
            buckets += 1;
        }
        let half_magnitude = magnitude - 1;
        let len = ((buckets + 1) as usize) << half_magnitude;
        Hdr {
            counts: Counts::new(len),
            total: 0,
            half_magnitude,
            sub_mask: sub_count - 1,
            zeros_base: 64 - magnitude,
            highest,
        }
    }

    /// The bucket of `value`: how many doublings past bucket 0.
    #[inline]
    fn bucket(&self, value: u64) -> u32 {
        self.zeros_base - (value | self.sub_mask).leading_zeros()
    }

    /// The counts index of `value`.
    #[inline]
    fn index(&self, value: u64) -> usize {
        let b = self.bucket(value);
        // Bucket b's sub-buckets are value >> b, in [half, 2·half) past
        // bucket 0; its first slot is at (b + 1)·half, so the slot is
        // b·half + (value >> b).
        ((b as usize) << self.half_magnitude) + (value >> b) as usize
    }

    /// The lowest value counted at `index`.
    fn value_at_index(&self, index: usize) -> u64 {
        let half = 1_usize << self.half_magnitude;
        let slot = index >> self.half_magnitude;
        if slot == 0 {
            // The lower half of bucket 0: values 0..half.
            index as u64
        } else {
            let b = slot - 1;
            (((index & (half - 1)) + half) as u64) << b
        }
    }

    /// Counts one `value` (`1..=highest`; the caller clamps).
    #[inline]
    pub(crate) fn record(&mut self, value: u64) {
        debug_assert!(value <= self.highest);
        let i = self.index(value);
        self.counts.add_at(i, 1);
        self.total += 1;
    }

    /// Values recorded.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Adds `other`'s counts. With another layout (other digits or
    /// range), each of its slots counts at the slot's lowest value, as
    /// HdrHistogram's `add` does.
    pub(crate) fn add(&mut self, other: &Hdr) {
        let same =
            self.half_magnitude == other.half_magnitude && self.counts.len() == other.counts.len();
        for (i, c) in other.counts.nonzero() {
            let j = if same {
                i
            } else {
                self.index(other.value_at_index(i).clamp(1, self.highest))
            };
            self.counts.add_at(j, c);
        }
        self.total += other.total;
    }

    /// The value at quantile `q` (HdrHistogram's definition, above); 0
    /// when empty.
    pub(crate) fn value_at_quantile(&self, q: f64) -> u64 {
        let q = q.min(1.0);
        let target = ((q * self.total as f64).ceil() as u64).max(1);
        let Some(i) = self.counts.reach(target) else {
            return 0;
        };
        let low = self.value_at_index(i);
        if q == 0.0 {
            low
        } else {
            // The top of the slot's range: its width is 2^bucket.
            low + (1_u64 << self.bucket(low)) - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;

    /// splitmix64: a fixed, dependency-free stream of test values.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    const HIGHEST: u64 = 3_600_000_000_000;

    /// Values spread over every bucket: a random magnitude, then a random
    /// mantissa, so small and large values are both common.
    fn value(state: &mut u64) -> u64 {
        let r = splitmix(state);
        let bits = (r % 43) as u32; // 2^42 > HIGHEST
        let v = (splitmix(state) >> (64 - bits.max(1))).max(1);
        v.min(HIGHEST)
    }

    #[test]
    fn agrees_with_hdrhistogram_on_every_quantile() {
        let qs: Vec<f64> = (0..=1000)
            .map(|k| f64::from(k) / 1000.0)
            .chain([0.999_9, 0.999_99, 1e-6, 1.5])
            .collect();
        for digits in [2_u8, 3] {
            for (seed, n) in [(1_u64, 1_usize), (2, 7), (3, 1_000), (4, 50_000)] {
                let mut ours = Hdr::new(HIGHEST, digits);
                let mut theirs = Histogram::<u64>::new_with_bounds(1, HIGHEST, digits).unwrap();
                let mut s = seed;
                for _ in 0..n {
                    let v = value(&mut s);
                    ours.record(v);
                    theirs.record(v).unwrap();
                }
                // The same layout: every slot boundary sits where theirs does.
                assert_eq!(ours.counts.len(), theirs.distinct_values());
                for &q in &qs {
                    assert_eq!(
                        ours.value_at_quantile(q),
                        theirs.value_at_quantile(q),
                        "digits {digits}, seed {seed}, n {n}, q {q}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_slot_maps_back_to_its_lowest_value() {
        // Exhaustive over the slots: the lowest value of each slot indexes
        // to that slot, as does the highest (just below the next slot).
        for digits in [2_u8, 3] {
            let h = Hdr::new(HIGHEST, digits);
            let theirs = Histogram::<u64>::new_with_bounds(1, HIGHEST, digits).unwrap();
            for i in 1..h.counts.len() {
                let low = h.value_at_index(i);
                if low > HIGHEST {
                    break;
                }
                assert_eq!(h.index(low), i, "digits {digits}, slot {i}");
                assert_eq!(low, theirs.lowest_equivalent(low));
                let high = low + (1_u64 << h.bucket(low)) - 1;
                assert_eq!(high, theirs.highest_equivalent(low));
                assert_eq!(h.index(high), i);
            }
        }
    }

    #[test]
    fn merging_equals_recording_into_one() {
        let (mut a, mut b, mut both) = (
            Hdr::new(HIGHEST, 3),
            Hdr::new(HIGHEST, 3),
            Hdr::new(HIGHEST, 3),
        );
        let mut s = 9;
        for k in 0..10_000 {
            let v = value(&mut s);
            if k % 3 == 0 { &mut a } else { &mut b }.record(v);
            both.record(v);
        }
        a.add(&b);
        assert_eq!(a.total(), 10_000);
        assert!(a.counts.iter().eq(both.counts.iter()));
    }

    #[test]
    fn merging_another_layout_counts_each_slot_once() {
        let (mut fine, mut coarse) = (Hdr::new(HIGHEST, 3), Hdr::new(HIGHEST, 2));
        for v in [1, 500, 123_456, 9_999_999] {
            coarse.record(v);
        }
        fine.add(&coarse);
        assert_eq!(fine.total(), 4);
        assert_eq!(fine.counts.iter().sum::<u64>(), 4);
        // 123,456 is in coarse bucket 9 (2^16 ≤ v < 2^17 with 2^8
        // sub-buckets): slot 241·2^9 = 123,392. Counted there, it lands in
        // the fine slot of width 2^6 from 123,392, whose top is 123,455.
        assert_eq!(fine.value_at_quantile(0.75), 123_455);
    }

    /// Chunks are allocated where values fall and nowhere else; counts
    /// in different chunks, and at chunk edges, stay apart.
    #[test]
    fn only_the_chunks_values_reach_are_allocated() {
        let mut h = Hdr::new(HIGHEST, 3);
        assert!(h.counts.chunks.iter().all(Option::is_none));
        for v in [1_000_000, 1_000_001, 5_000_000] {
            h.record(v);
        }
        let allocated: Vec<usize> = (0..h.counts.chunks.len())
            .filter(|&k| h.counts.chunks[k].is_some())
            .collect();
        assert_eq!(
            allocated,
            [h.index(1_000_000) / CHUNK, h.index(5_000_000) / CHUNK],
            "two chunks for three values in two places"
        );
        // The last slot of a chunk and the first of the next.
        let edge = CHUNK * 5;
        let (low, next) = (h.value_at_index(edge - 1), h.value_at_index(edge));
        h.record(low);
        h.record(next);
        assert_eq!((h.counts.get(edge - 1), h.counts.get(edge)), (1, 1));
        assert_eq!(h.counts.iter().sum::<u64>(), 5);
        // Slot 5·1,024 − 1 is far below a millisecond: now the least value.
        assert!(low < 1_000_000);
        assert_eq!(h.value_at_quantile(0.0), low);
        // The top reads across the gap of empty chunks to the last value,
        // reported within 3 significant digits.
        let top = h.value_at_quantile(1.0);
        assert!((5_000_000..5_005_000).contains(&top), "{top}");
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(Hdr::new(HIGHEST, 3).value_at_quantile(0.5), 0);
    }
}
