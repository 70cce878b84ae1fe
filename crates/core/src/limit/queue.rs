//! `queue`: a server's queue of accepted work, with load shedding.
//!
//! A server that accepts more work than it can start holds it in a queue.
//! Unbounded, that queue turns overload into unbounded latency: every
//! request waits behind a standing backlog, and clients time out on work the
//! server then does anyway. Three remedies, combinable:
//!
//! - **Capacity.** A full queue rejects new work at once ([`Rejected`]; the
//!   server answers 503).
//! - **Discipline.** [`Discipline::Fifo`] serves the oldest first;
//!   [`Discipline::Lifo`] the newest, so that under overload fresh requests
//!   (whose clients are still waiting) are served and stale ones time out;
//!   [`Discipline::AdaptiveLifo`] is FIFO until the queue has been non-empty
//!   for `adaptive_lifo_after`, then LIFO — Facebook's "adaptive LIFO"
//!   (Maurer, *Fail at Scale*, ACM Queue 2015: "if the queue has not been
//!   empty for the last 100 ms", LIFO).
//! - **CoDel** (Nichols & Jacobson, RFC 8289), applied at dequeue. When the
//!   sojourn time of the items being served has stayed at or above `target`
//!   for a whole `interval`, CoDel enters its dropping state: it drops one
//!   item, then one more at each `drop_next`, spaced `interval / sqrt(count)`
//!   apart, until an item's sojourn falls below `target` (or the queue
//!   nearly empties). Re-entering soon after leaving resumes from the
//!   previous drop rate (the RFC's Linux-derived `count = delta` rule).
//!   Dropped items are handed back in [`Popped::dropped`] so the server can
//!   answer them with 503 rather than lose them.
//!
//! RFC 8289's pseudocode (section 5) is followed line by line, with two
//! translations: its "`bytes() <= MAXPACKET`" test (at most one packet left
//! after the dequeue) becomes "at most one item left", and times are our
//! integer nanoseconds (`interval / sqrt(count)` rounded down). CoDel
//! judges whichever item the discipline serves: under LIFO that is the
//! newest, so CoDel rarely engages — old items wait at the bottom instead.
//!
//! Defaults: unbounded, FIFO, no CoDel; CoDel's own defaults are RFC 8289's
//! `target` 5 ms and `interval` 100 ms; `adaptive_lifo_after` 100 ms.
//!
//! # Calling order
//!
//! - Getters: [`ServerQueue::len`], [`ServerQueue::is_empty`],
//!   [`ServerQueue::is_dropping`], [`ServerQueue::oldest`].
//! - Inputs and decisions: [`ServerQueue::push`]`(now, item)` accepts or
//!   rejects; [`ServerQueue::pop`]`(now)` when a worker is free returns the
//!   item to serve and any items CoDel dropped. Times must not go backwards.

use crate::error::ConfigError;
use crate::time::{Nanos, Time};
use std::collections::VecDeque;

/// Which queued item a free worker takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Discipline {
    /// Oldest first.
    #[default]
    Fifo,
    /// Newest first.
    Lifo,
    /// FIFO, but LIFO once the queue has been non-empty for
    /// `adaptive_lifo_after` (Facebook's adaptive LIFO).
    AdaptiveLifo,
}

/// CoDel parameters (RFC 8289 section 4.2, 4.3).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct CodelConfig {
    /// Acceptable standing sojourn time (5 ms).
    pub target: Nanos,
    /// How long the sojourn time must stay above target before dropping,
    /// and the base of the drop spacing (100 ms).
    pub interval: Nanos,
}

impl Default for CodelConfig {
    fn default() -> Self {
        CodelConfig {
            target: Nanos::from_millis(5),
            interval: Nanos::from_millis(100),
        }
    }
}

/// Configuration of a [`ServerQueue`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Most items held; `None` is unbounded. `Some(0)` never queues.
    pub capacity: Option<u32>,
    /// Which item is served next.
    pub discipline: Discipline,
    /// Load shedding by CoDel; `None` disables it.
    pub codel: Option<CodelConfig>,
    /// For [`Discipline::AdaptiveLifo`]: how long the queue must have been
    /// non-empty before serving newest first (100 ms; zero makes it LIFO).
    pub adaptive_lifo_after: Nanos,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: None,
            discipline: Discipline::Fifo,
            codel: None,
            adaptive_lifo_after: Nanos::from_millis(100),
        }
    }
}

impl QueueConfig {
    /// Validates and builds an empty queue.
    pub fn try_new<T>(&self) -> Result<ServerQueue<T>, ConfigError> {
        if let Some(c) = &self.codel {
            for (field, d) in [
                ("queue.codel.target", c.target),
                ("queue.codel.interval", c.interval),
            ] {
                if d == Nanos::ZERO {
                    return Err(ConfigError::new(
                        field,
                        "0s is too short; expected a positive duration",
                    ));
                }
            }
        }
        let cfg = self.clone();
        Ok(ServerQueue {
            codel: cfg.codel.clone().map(Codel::new),
            cfg,
            items: VecDeque::new(),
            nonempty_since: None,
        })
    }
}

/// The queue was full; the item is handed back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected<T>(pub T);

/// What a pop returns: the item to serve, if any, and the items CoDel
/// dropped on the way (oldest decision first), to be answered 503.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Popped<T> {
    /// The item to serve now; `None` if the queue is (now) empty.
    pub item: Option<T>,
    /// Items shed by CoDel during this pop.
    pub dropped: Vec<T>,
}

#[derive(Clone, Debug)]
struct Entry<T> {
    item: T,
    at: Time,
}

/// RFC 8289's state variables.
#[derive(Clone, Debug)]
struct Codel {
    target: Nanos,
    interval: Nanos,
    first_above: Option<Time>,
    drop_next: Time,
    count: u32,
    lastcount: u32,
    dropping: bool,
}

impl Codel {
    fn new(c: CodelConfig) -> Codel {
        Codel {
            target: c.target,
            interval: c.interval,
            first_above: None,
            drop_next: Time::ZERO,
            count: 0,
            lastcount: 0,
            dropping: false,
        }
    }

    /// `t + interval / sqrt(count)`.
    fn control_law(&self, t: Time, count: u32) -> Time {
        let step = self.interval.as_nanos() as f64 / f64::from(count.max(1)).sqrt();
        t + Nanos(step as u64)
    }
}

/// A server's queue; see the module docs.
#[derive(Clone, Debug)]
pub struct ServerQueue<T> {
    cfg: QueueConfig,
    items: VecDeque<Entry<T>>,
    codel: Option<Codel>,
    /// When the queue last went from empty to non-empty; `None` while empty.
    nonempty_since: Option<Time>,
}

// === impl ServerQueue ===

impl<T> ServerQueue<T> {
    /// Items waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// `true` when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// `true` while CoDel is in its dropping state.
    pub fn is_dropping(&self) -> bool {
        self.codel.as_ref().is_some_and(|c| c.dropping)
    }

    /// The enqueue time of the oldest waiting item.
    pub fn oldest(&self) -> Option<Time> {
        self.items.front().map(|e| e.at)
    }

    /// Queues `item` at `now`, or hands it back if the queue is full.
    pub fn push(&mut self, now: Time, item: T) -> Result<(), Rejected<T>> {
        if let Some(cap) = self.cfg.capacity {
            if self.items.len() >= cap as usize {
                return Err(Rejected(item));
            }
        }
        if self.items.is_empty() {
            self.nonempty_since = Some(now);
        }
        self.items.push_back(Entry { item, at: now });
        Ok(())
    }

    /// A worker is free at `now`: the item to serve, and what CoDel shed.
    pub fn pop(&mut self, now: Time) -> Popped<T> {
        let newest = match self.cfg.discipline {
            Discipline::Fifo => false,
            Discipline::Lifo => true,
            Discipline::AdaptiveLifo => self
                .nonempty_since
                .is_some_and(|t| now - t >= self.cfg.adaptive_lifo_after),
        };
        let mut dropped = Vec::new();
        let item = if self.codel.is_some() {
            self.codel_dequeue(now, newest, &mut dropped)
        } else {
            self.take(newest).map(|e| e.item)
        };
        Popped { item, dropped }
    }

    fn take(&mut self, newest: bool) -> Option<Entry<T>> {
        let e = if newest {
            self.items.pop_back()
        } else {
            self.items.pop_front()
        };
        if self.items.is_empty() {
            self.nonempty_since = None;
        }
        e
    }

    /// RFC 8289 `dodequeue`: the next item and whether it may be dropped.
    fn dodequeue(&mut self, now: Time, newest: bool) -> (Option<T>, bool) {
        let e = self.take(newest);
        let left = self.items.len();
        let Some(c) = self.codel.as_mut() else {
            return (e.map(|e| e.item), false);
        };
        let Some(e) = e else {
            c.first_above = None;
            return (None, false);
        };
        let mut ok_to_drop = false;
        if now - e.at < c.target || left <= 1 {
            c.first_above = None;
        } else {
            match c.first_above {
                None => c.first_above = Some(now + c.interval),
                Some(t) if now >= t => ok_to_drop = true,
                Some(_) => {}
            }
        }
        (Some(e.item), ok_to_drop)
    }

    /// RFC 8289 `dequeue`.
    fn codel_dequeue(&mut self, now: Time, newest: bool, dropped: &mut Vec<T>) -> Option<T> {
        let (mut item, mut ok) = self.dodequeue(now, newest);
        let dropping = self.codel.as_ref().is_some_and(|c| c.dropping);
        if dropping {
            if !ok {
                self.codel_mut().dropping = false;
            }
            loop {
                let c = self.codel_mut();
                if !(c.dropping && now >= c.drop_next) {
                    break;
                }
                c.count += 1;
                dropped.extend(item.take());
                (item, ok) = self.dodequeue(now, newest);
                let c = self.codel_mut();
                if ok {
                    c.drop_next = c.control_law(c.drop_next, c.count);
                } else {
                    c.dropping = false;
                }
            }
        } else if ok {
            dropped.extend(item.take());
            (item, _) = self.dodequeue(now, newest);
            let c = self.codel_mut();
            c.dropping = true;
            let delta = c.count.wrapping_sub(c.lastcount);
            c.count = 1;
            if delta > 1 && now - c.drop_next < c.interval.saturating_mul(16) {
                c.count = delta;
            }
            c.drop_next = c.control_law(now, c.count);
            c.lastcount = c.count;
        }
        item
    }

    fn codel_mut(&mut self) -> &mut Codel {
        self.codel
            .as_mut()
            .expect("only called with CoDel configured")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{run_table, table};

    fn at(ms: u64) -> Time {
        Time(Nanos::from_millis(ms).as_nanos())
    }

    fn queue(discipline: Discipline, capacity: Option<u32>) -> ServerQueue<u32> {
        QueueConfig {
            capacity,
            discipline,
            ..Default::default()
        }
        .try_new()
        .unwrap()
    }

    fn drain(q: &mut ServerQueue<u32>, now: Time) -> Vec<u32> {
        std::iter::from_fn(|| q.pop(now).item).collect()
    }

    #[test]
    fn fifo_and_lifo_orders() {
        let mut f = queue(Discipline::Fifo, None);
        let mut l = queue(Discipline::Lifo, None);
        for i in 0..4 {
            f.push(at(i), i as u32).unwrap();
            l.push(at(i), i as u32).unwrap();
        }
        assert_eq!(drain(&mut f, at(10)), [0, 1, 2, 3]);
        assert_eq!(drain(&mut l, at(10)), [3, 2, 1, 0]);
    }

    #[test]
    fn a_full_queue_rejects_and_hands_the_item_back() {
        let mut q = queue(Discipline::Fifo, Some(2));
        assert_eq!(q.push(at(0), 1), Ok(()));
        assert_eq!(q.push(at(0), 2), Ok(()));
        assert_eq!(q.push(at(0), 3), Err(Rejected(3)));
        assert_eq!(q.pop(at(1)).item, Some(1));
        assert_eq!(q.push(at(1), 4), Ok(()));
        assert_eq!(q.len(), 2);
        let mut none = queue(Discipline::Fifo, Some(0));
        assert_eq!(none.push(at(0), 9), Err(Rejected(9)));
    }

    #[test]
    fn adaptive_lifo_switches_after_the_queue_stays_busy() {
        let mut q = queue(Discipline::AdaptiveLifo, None);
        q.push(at(0), 1).unwrap();
        q.push(at(0), 2).unwrap();
        // Non-empty since 0; at 50 ms that is < 100 ms: FIFO.
        assert_eq!(q.pop(at(50)).item, Some(1));
        q.push(at(60), 3).unwrap();
        // At 100 ms it has been non-empty for 100 ms: LIFO.
        assert_eq!(q.pop(at(100)).item, Some(3));
        assert_eq!(q.pop(at(101)).item, Some(2));
        // Emptied at 101 ms; busy again from 200 ms: FIFO at 250 ms.
        q.push(at(200), 4).unwrap();
        q.push(at(200), 5).unwrap();
        assert_eq!(q.pop(at(250)).item, Some(4));
    }

    #[test]
    fn codel_drops_nothing_below_target() {
        let mut q: ServerQueue<u32> = QueueConfig {
            codel: Some(CodelConfig::default()),
            ..Default::default()
        }
        .try_new()
        .unwrap();
        // Every 10 ms for 10 s, 10 items arrive and are all served 4 ms
        // later: a queue of 10, but every sojourn is 4 ms < 5 ms target.
        for t in (0..10_000u64).step_by(10) {
            for i in 0..10 {
                q.push(at(t), i).unwrap();
            }
            for _ in 0..10 {
                let p = q.pop(at(t + 4));
                assert!(p.dropped.is_empty() && p.item.is_some(), "at {t}ms");
            }
        }
        assert!(!q.is_dropping());
        assert_eq!(q.codel.as_ref().unwrap().first_above, None);
    }

    enum Ev {
        Push(u32),
        Pop,
    }

    #[test]
    fn codel_follows_the_rfc_8289_schedule() {
        let mut q: ServerQueue<u32> = QueueConfig {
            codel: Some(CodelConfig::default()),
            ..Default::default()
        }
        .try_new()
        .unwrap();
        let mut next_id = 0;
        let steps = [
            (0, Ev::Push(14)),
            (0, Ev::Pop),
            (10, Ev::Pop),
            (110, Ev::Pop),
            (209, Ev::Pop),
            (210, Ev::Pop),
            (400, Ev::Pop),
            (401, Ev::Pop),
            (402, Ev::Pop),
            (403, Ev::Pop),
            (404, Ev::Pop),
            (500, Ev::Push(6)),
            (510, Ev::Pop),
            (610, Ev::Pop),
            (660, Ev::Pop),
            (661, Ev::Pop),
        ];
        let got = run_table(&steps, |now, ev| match ev {
            Ev::Push(n) => {
                for _ in 0..*n {
                    q.push(now, next_id).unwrap();
                    next_id += 1;
                }
                format!("queued {}", q.len())
            }
            Ev::Pop => {
                let p = q.pop(now);
                let c = q.codel.as_ref().unwrap();
                let state = if c.dropping {
                    format!(
                        "dropping count={} next={}",
                        c.count,
                        c.drop_next - Time::ZERO
                    )
                } else {
                    "idle".to_string()
                };
                let item = p.item.map_or("none".to_string(), |i| i.to_string());
                format!("serve {item} dropped={:?} {state}", p.dropped)
            }
        });
        // Items 0..13 all queued at t=0, so sojourn = now.
        // 0: sojourn 0 < 5ms. 10: above target; first_above = 10 + 100 = 110.
        // 110: above for an interval → drop 2, serve 3, dropping; count = 1,
        //      drop_next = 110 + 100/√1 = 210ms.
        // 209: before drop_next: serve 4.
        // 210: drop 5 (count 2), serve 6; drop_next = 210 + 100/√2
        //      = 210 + 70.710678 = 280.710678ms.
        // 400: three drops are due: 7 (count 3, next + 100/√3 = 57.735026
        //      → 338.445704ms), 8 (count 4, + 50 → 388.445704ms),
        //      9 (count 5, + 100/√5 = 44.721359 → 433.167063ms); serve 10.
        // 401: serve 11 (433 not reached). 402: serving 12 leaves one item
        //      (≤ one "packet") → leave dropping. 403: serve 13. 404: empty.
        // 510: items 14..19 (queued at 500) wait 10ms; first_above = 610.
        // 610: drop 15, serve 16. Re-entry: delta = count 5 − lastcount 1
        //      = 4 > 1 and 610 − 433.167 < 16 × 100ms → count = 4,
        //      drop_next = 610 + 100/√4 = 660ms.
        // 660: drop 17 (count 5); 18 leaves one item → leave dropping; serve 18.
        assert_eq!(
            got,
            table(
                "
                0s    | queued 14
                0s    | serve 0 dropped=[] idle
                10ms  | serve 1 dropped=[] idle
                110ms | serve 3 dropped=[2] dropping count=1 next=210ms
                209ms | serve 4 dropped=[] dropping count=1 next=210ms
                210ms | serve 6 dropped=[5] dropping count=2 next=280710678ns
                400ms | serve 10 dropped=[7, 8, 9] dropping count=5 next=433167063ns
                401ms | serve 11 dropped=[] dropping count=5 next=433167063ns
                402ms | serve 12 dropped=[] idle
                403ms | serve 13 dropped=[] idle
                404ms | serve none dropped=[] idle
                500ms | queued 6
                510ms | serve 14 dropped=[] idle
                610ms | serve 16 dropped=[15] dropping count=4 next=660ms
                660ms | serve 18 dropped=[17] idle
                661ms | serve 19 dropped=[] idle
                "
            )
        );
    }

    #[test]
    fn config_checks_ranges() {
        let e = QueueConfig {
            codel: Some(CodelConfig {
                target: Nanos::ZERO,
                ..Default::default()
            }),
            ..Default::default()
        }
        .try_new::<u32>()
        .unwrap_err();
        assert_eq!(e.field, "queue.codel.target");
        let c: QueueConfig =
            serde_json::from_str(r#"{"capacity": 8, "discipline": "lifo", "codel": {}}"#).unwrap();
        assert_eq!(c.capacity, Some(8));
        assert_eq!(c.codel, Some(CodelConfig::default()));
        assert!(serde_json::from_str::<QueueConfig>(r#"{"size": 8}"#).is_err());
    }
}
