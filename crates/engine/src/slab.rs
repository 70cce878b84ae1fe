//! A slab with generation-checked references: an event that names an entry
//! which has since been freed (a timed-out attempt, a crashed instance's
//! work) finds nothing instead of its successor.

/// A reference into a [`Slab`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ref {
    idx: u32,
    gen: u32,
}

/// Storage whose size follows the number of live entries, not the number
/// ever inserted.
#[derive(Debug)]
pub struct Slab<T> {
    items: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
    live: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            items: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Stores `v`.
    #[inline]
    pub fn insert(&mut self, v: T) -> Ref {
        self.live += 1;
        // A new slot starts empty one generation before 0, so that both
        // cases store the value in one place.
        let idx = match self.free.pop() {
            Some(idx) => idx,
            None => {
                self.items.push((u32::MAX, None));
                (self.items.len() - 1) as u32
            }
        };
        let slot = &mut self.items[idx as usize];
        slot.0 = slot.0.wrapping_add(1);
        slot.1 = Some(v);
        Ref { idx, gen: slot.0 }
    }

    /// The entry, if it is still the one `r` named.
    pub fn get(&self, r: Ref) -> Option<&T> {
        match self.items.get(r.idx as usize) {
            Some((g, Some(v))) if *g == r.gen => Some(v),
            _ => None,
        }
    }

    /// The entry, mutably.
    pub fn get_mut(&mut self, r: Ref) -> Option<&mut T> {
        match self.items.get_mut(r.idx as usize) {
            Some((g, Some(v))) if *g == r.gen => Some(v),
            _ => None,
        }
    }

    /// Removes and returns the entry.
    pub fn remove(&mut self, r: Ref) -> Option<T> {
        match self.items.get_mut(r.idx as usize) {
            Some((g, slot @ Some(_))) if *g == r.gen => {
                self.free.push(r.idx);
                self.live -= 1;
                slot.take()
            }
            _ => None,
        }
    }

    /// Live entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.live
    }

    /// References to every live entry, in slot order.
    pub fn refs(&self) -> Vec<Ref> {
        self.items
            .iter()
            .enumerate()
            .filter(|(_, (_, v))| v.is_some())
            .map(|(i, (g, _))| Ref {
                idx: i as u32,
                gen: *g,
            })
            .collect()
    }
}

/// A short list of references: the first two inline, more on the heap.
/// A call's attempts are one or two almost always (a first try and a
/// retry or hedge), so most calls allocate nothing for them.
#[derive(Debug, Default)]
pub struct Refs {
    inline: [Option<Ref>; 2],
    more: Vec<Ref>,
}

impl Refs {
    /// How many.
    pub fn len(&self) -> usize {
        self.inline.iter().filter(|r| r.is_some()).count() + self.more.len()
    }

    /// Appends `r`.
    pub fn push(&mut self, r: Ref) {
        match self.inline.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some(r),
            None => self.more.push(r),
        }
    }
}

impl IntoIterator for Refs {
    type Item = Ref;
    type IntoIter = std::iter::Chain<
        std::iter::Flatten<std::array::IntoIter<Option<Ref>, 2>>,
        std::vec::IntoIter<Ref>,
    >;

    /// In insertion order.
    fn into_iter(self) -> Self::IntoIter {
        self.inline.into_iter().flatten().chain(self.more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_refs_find_nothing_after_reuse() {
        let mut s = Slab::default();
        let a = s.insert(1);
        assert_eq!(s.remove(a), Some(1));
        let b = s.insert(2);
        assert_eq!(s.get(a), None, "a's slot now holds b");
        assert_eq!(s.get(b), Some(&2));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn refs_keep_insertion_order_past_the_inline_ones() {
        let mut s = Slab::default();
        let all: Vec<Ref> = (0..5).map(|i| s.insert(i)).collect();
        let mut refs = Refs::default();
        for (k, r) in all.iter().enumerate() {
            assert_eq!(refs.len(), k);
            refs.push(*r);
        }
        assert_eq!(refs.into_iter().collect::<Vec<_>>(), all);
    }
}
