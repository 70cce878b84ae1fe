//! `deadline`: how much time a downstream call inherits.
//!
//! A request that arrives with 300 ms left should not start a 2 s call to
//! its own upstream: the caller will have given up long before. Deadline
//! propagation passes the *remaining* time along each hop, so every hop's
//! timeout is `min(own timeout, time left on the caller's deadline)`, and a
//! hop whose deadline has passed fails at once instead of doing useless work.
//!
//! - [`Deadline`]: an instant, or [`Deadline::NEVER`]. [`child_timeout`]
//!   gives a child call's timeout: the smaller of its own timeout and what
//!   remains, or `None` when nothing remains (fail with
//!   `DEADLINE_EXCEEDED` / 504 without sending). Finagle's
//!   `Deadline.combined` likewise keeps the earlier of two deadlines
//!   (`finagle-core/.../Deadline.scala`; carried in the broadcast context).
//! - gRPC sends the remaining time in the `grpc-timeout` request header at
//!   every hop (PROTOCOL-HTTP2.md: at most 8 digits and a unit `H M S m u n`).
//!   [`encode_grpc_timeout`] and [`parse_grpc_timeout`] follow grpc-go's
//!   `encodeTimeout` / `decodeTimeout` (`internal/transport/http_util.go`):
//!   the encoder takes the finest unit whose value, rounded up, fits in
//!   8 digits.
//! - Envoy ignores the caller's deadline unless told otherwise
//!   (`source/common/router/router.cc`, `FilterUtility::finalTimeout` and
//!   `setTimeoutHeaders`): [`envoy_route_timeout`] gives the route timeout an
//!   Envoy applies to an incoming request (`x-envoy-expected-rq-timeout-ms`
//!   replaces the route timeout only with `respect_expected_rq_timeout`;
//!   `x-envoy-upstream-rq-timeout-ms` always does), [`envoy_grpc_timeout`]
//!   the timeout it derives from `grpc-timeout` (`max_grpc_timeout` /
//!   `grpc_timeout_offset`, now `max_stream_duration.grpc_timeout_header_max`
//!   / `_offset`), and [`envoy_expected_timeout`] what it writes into
//!   `x-envoy-expected-rq-timeout-ms` for the next hop. All three are
//!   milliseconds on the wire; zero means "no timeout".
//!
//! Everything here is a pure function of its arguments.

use crate::time::{Nanos, Time};

/// A point in time by which a request must be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(pub Time);

impl Deadline {
    /// No deadline.
    pub const NEVER: Deadline = Deadline(Time::MAX);

    /// `timeout` from `now`; a zero timeout means none (Envoy's convention).
    pub fn after(now: Time, timeout: Nanos) -> Deadline {
        if timeout == Nanos::ZERO {
            Deadline::NEVER
        } else {
            Deadline(now + timeout)
        }
    }

    /// Whether the deadline has passed (reaching it counts as passed).
    pub fn is_expired(self, now: Time) -> bool {
        self != Deadline::NEVER && now >= self.0
    }

    /// Time left, `None` once expired, [`Nanos::MAX`] for [`Deadline::NEVER`].
    pub fn remaining(self, now: Time) -> Option<Nanos> {
        if self == Deadline::NEVER {
            Some(Nanos::MAX)
        } else if now >= self.0 {
            None
        } else {
            Some(self.0 - now)
        }
    }

    /// The earlier of two deadlines (Finagle `Deadline.combined`).
    pub fn combined(self, other: Deadline) -> Deadline {
        self.min(other)
    }
}

/// The timeout of a child call made at `now` by a request due at
/// `parent`: `min(own_timeout, remaining)`. `own_timeout` `None` means the
/// child has no timeout of its own. Returns `None` if the parent's deadline
/// has passed (do not send), `Some(Nanos::MAX)` if neither bounds the call.
pub fn child_timeout(now: Time, parent: Deadline, own_timeout: Option<Nanos>) -> Option<Nanos> {
    let left = parent.remaining(now)?;
    Some(own_timeout.map_or(left, |t| t.min(left)))
}

const GRPC_MAX_VALUE: u64 = 99_999_999;
const GRPC_UNITS: [(char, u64); 6] = [
    ('n', 1),
    ('u', 1_000),
    ('m', 1_000_000),
    ('S', 1_000_000_000),
    ('M', 60_000_000_000),
    ('H', 3_600_000_000_000),
];

/// The `grpc-timeout` header value for `t` (grpc-go `encodeTimeout`): the
/// finest unit whose value, rounded up, has at most 8 digits; `0n` for zero.
pub fn encode_grpc_timeout(t: Nanos) -> String {
    if t == Nanos::ZERO {
        return "0n".to_owned();
    }
    for (unit, scale) in GRPC_UNITS {
        let v = t.0.div_ceil(scale);
        if v <= GRPC_MAX_VALUE || unit == 'H' {
            return format!("{v}{unit}");
        }
    }
    unreachable!("the hour unit always returns")
}

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits and a unit
/// (`H M S m u n`). `None` if malformed, including any non-ASCII input.
/// Hour values beyond [`Nanos::MAX`] saturate at it.
pub fn parse_grpc_timeout(s: &str) -> Option<Nanos> {
    // Work on bytes: the last *byte* must be an ASCII unit, so a value that
    // ends in a multi-byte character ("5é") is refused instead of being split
    // inside that character.
    let (&unit, digits) = s.as_bytes().split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let (_, scale) = GRPC_UNITS.iter().find(|(u, _)| *u == char::from(unit))?;
    // At most 8 digits: the value fits in a u64 with room to spare.
    let value = digits
        .iter()
        .fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
    Some(Nanos(value.saturating_mul(*scale)))
}

/// The route timeout an Envoy applies to an incoming request
/// (`finalTimeout`): `x-envoy-expected-rq-timeout-ms` if present *and*
/// `respect_expected_rq_timeout`, else `x-envoy-upstream-rq-timeout-ms` if
/// present, else the configured route timeout. Zero means none.
pub fn envoy_route_timeout(
    route_timeout: Nanos,
    expected_rq_timeout: Option<Nanos>,
    upstream_rq_timeout: Option<Nanos>,
    respect_expected_rq_timeout: bool,
) -> Nanos {
    match (respect_expected_rq_timeout, expected_rq_timeout) {
        (true, Some(t)) => t,
        _ => upstream_rq_timeout.unwrap_or(route_timeout),
    }
}

/// The timeout Envoy derives for a gRPC request from its `grpc-timeout`
/// header: the header value minus `offset` (only if `offset` is smaller),
/// then capped at `max` when `max` is non-zero — and a missing header means
/// `max`. Zero means none (so `max = 0` trusts the client entirely).
pub fn envoy_grpc_timeout(header: Option<Nanos>, max: Nanos, offset: Nanos) -> Nanos {
    let mut t = header.unwrap_or(Nanos::ZERO);
    if offset < t {
        t = t - offset;
    }
    if max != Nanos::ZERO && (t == Nanos::ZERO || t > max) {
        t = max;
    }
    t
}

/// What an Envoy writes into `x-envoy-expected-rq-timeout-ms` (and, for
/// gRPC with `max_grpc_timeout`, into `grpc-timeout`) when it sends an
/// attempt `elapsed` after the route timer started (`setTimeoutHeaders`):
/// the per-try timeout (the route timeout when there is none or when hedging
/// on per-try timeouts), capped at the route time left, and 1 ms once that
/// is gone. `None` when the result is zero: no header is written.
pub fn envoy_expected_timeout(
    elapsed: Nanos,
    route_timeout: Nanos,
    per_try_timeout: Option<Nanos>,
    hedge_on_per_try_timeout: bool,
) -> Option<Nanos> {
    let mut expected = match per_try_timeout {
        Some(p) if !hedge_on_per_try_timeout && p != Nanos::ZERO => p,
        _ => route_timeout,
    };
    if expected == Nanos::ZERO {
        return None;
    }
    if route_timeout != Nanos::ZERO {
        expected = if elapsed >= route_timeout {
            Nanos::from_millis(1)
        } else {
            expected.min(route_timeout - elapsed)
        };
    }
    Some(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Nanos {
        Nanos::from_millis(n)
    }
    fn at(n: u64) -> Time {
        Time(ms(n).0)
    }

    #[test]
    fn child_inherits_the_smaller_of_own_and_remaining() {
        let parent = Deadline::after(at(1000), ms(300)); // due at 1300 ms
        assert_eq!(
            child_timeout(at(1100), parent, Some(ms(2000))),
            Some(ms(200))
        );
        assert_eq!(child_timeout(at(1100), parent, Some(ms(50))), Some(ms(50)));
        assert_eq!(child_timeout(at(1100), parent, None), Some(ms(200)));
        assert_eq!(child_timeout(at(1299), parent, Some(ms(50))), Some(ms(1)));
        assert_eq!(child_timeout(at(1300), parent, Some(ms(50))), None);
        assert_eq!(child_timeout(at(5000), parent, None), None);
        assert_eq!(
            child_timeout(at(5000), Deadline::NEVER, Some(ms(7))),
            Some(ms(7))
        );
        assert_eq!(
            child_timeout(at(5000), Deadline::NEVER, None),
            Some(Nanos::MAX)
        );
        assert_eq!(Deadline::after(at(3), Nanos::ZERO), Deadline::NEVER);
        assert!(!Deadline::NEVER.is_expired(Time::MAX));
        assert!(parent.is_expired(at(1300)) && !parent.is_expired(at(1299)));
        assert_eq!(parent.combined(Deadline(at(1200))), Deadline(at(1200)));
    }

    #[test]
    fn grpc_timeout_encoding_matches_grpc_go() {
        // Finest unit whose ceiling fits in 8 digits (grpc-go encodeTimeout).
        assert_eq!(encode_grpc_timeout(Nanos::ZERO), "0n");
        assert_eq!(encode_grpc_timeout(Nanos(99_999_999)), "99999999n");
        assert_eq!(encode_grpc_timeout(Nanos(100_000_000)), "100000u");
        assert_eq!(encode_grpc_timeout(Nanos(100_000_001)), "100001u");
        assert_eq!(encode_grpc_timeout(ms(250)), "250000u");
        assert_eq!(encode_grpc_timeout(Nanos::from_secs(3600)), "3600000m");
        assert_eq!(encode_grpc_timeout(Nanos::from_secs(200_000)), "200000S");
        assert_eq!(encode_grpc_timeout(Nanos::MAX), "5124096H");
        for v in ["1n", "99999999n", "250m", "3S", "5M", "2H", "0n"] {
            let t = parse_grpc_timeout(v).unwrap();
            assert_eq!(parse_grpc_timeout(&encode_grpc_timeout(t)), Some(t), "{v}");
        }
        assert_eq!(parse_grpc_timeout("250m"), Some(ms(250)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Nanos::from_secs(3600)));
        for bad in ["", "m", "123456789m", "12x", "-5m", "+5m", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn grpc_timeout_refuses_non_ascii_without_panicking() {
        // The header is ASCII digits and an ASCII unit (PROTOCOL-HTTP2.md):
        // a multi-byte character anywhere makes the value malformed, even
        // when it is the last character ("5é": 3 bytes, the last one inside é).
        for bad in [
            "é",
            "5é",
            "12€",
            "1😀",
            "€m",
            "5\u{b5}",
            "\u{ff15}m",
            "1\u{0660}m",
        ] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
        // Non-ASCII that happens to end with a valid ASCII unit is refused too.
        assert_eq!(parse_grpc_timeout("9\u{301}S"), None);
    }

    /// Nanoseconds per unit, from PROTOCOL-HTTP2.md (written out here rather
    /// than read from `GRPC_UNITS`, so a wrong table would be caught).
    fn spec_scale(unit: char) -> Option<u64> {
        Some(match unit {
            'n' => 1,
            'u' => 1_000,
            'm' => 1_000_000,
            'S' => 1_000_000_000,
            'M' => 60 * 1_000_000_000,
            'H' => 3600 * 1_000_000_000,
            _ => return None,
        })
    }

    proptest::proptest! {
        /// Any string, arbitrary Unicode or a mix of digits, units and
        /// multi-byte characters: no panic, and `Some` only for 1–8 ASCII
        /// digits and a unit, with the value they denote (saturating).
        #[test]
        fn grpc_timeout_parse_never_panics(
            any in proptest::prelude::any::<String>(),
            mixed in "[0-9nuMSmHx+é€😀\u{301}]{0,10}",
        ) {
            for s in [any, mixed] {
                if let Some(t) = parse_grpc_timeout(&s) {
                    let unit = s.chars().last().and_then(spec_scale);
                    let digits = &s[..s.len() - 1];
                    proptest::prop_assert!(unit.is_some(), "{:?}", s);
                    proptest::prop_assert!((1..=8).contains(&digits.len()), "{:?}", s);
                    proptest::prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{:?}", s);
                    let want = digits.parse::<u64>().unwrap().saturating_mul(unit.unwrap());
                    proptest::prop_assert_eq!(t, Nanos(want), "{:?}", s);
                }
            }
        }

        /// A well-formed value parses; with a non-ASCII character after the
        /// unit or in its place it does not.
        #[test]
        fn grpc_timeout_parses_digits_and_unit(
            v in 0u64..=99_999_999,
            unit in proptest::sample::select(vec!['n', 'u', 'm', 'S', 'M', 'H']),
            junk in "[^\\x00-\\x7f]",
        ) {
            let want = v.saturating_mul(spec_scale(unit).unwrap());
            proptest::prop_assert_eq!(parse_grpc_timeout(&format!("{v}{unit}")), Some(Nanos(want)));
            proptest::prop_assert_eq!(parse_grpc_timeout(&format!("{v}{unit}{junk}")), None);
            proptest::prop_assert_eq!(parse_grpc_timeout(&format!("{v}{junk}")), None);
        }
    }

    #[test]
    fn envoy_route_timeout_respects_expected_only_when_told() {
        let route = Nanos::from_secs(15);
        assert_eq!(
            envoy_route_timeout(route, Some(ms(800)), None, false),
            route
        );
        assert_eq!(
            envoy_route_timeout(route, Some(ms(800)), None, true),
            ms(800)
        );
        assert_eq!(
            envoy_route_timeout(route, None, Some(ms(900)), false),
            ms(900)
        );
        assert_eq!(
            envoy_route_timeout(route, None, Some(ms(900)), true),
            ms(900)
        );
        assert_eq!(
            envoy_route_timeout(route, Some(ms(800)), Some(ms(900)), true),
            ms(800)
        );
    }

    #[test]
    fn envoy_grpc_timeout_offsets_and_caps() {
        let s = Nanos::from_secs;
        // Header 5 s, offset 100 ms, cap 2 s: 4.9 s capped to 2 s.
        assert_eq!(envoy_grpc_timeout(Some(s(5)), s(2), ms(100)), s(2));
        assert_eq!(envoy_grpc_timeout(Some(s(1)), s(2), ms(100)), ms(900));
        // Offset not below the header: unchanged.
        assert_eq!(
            envoy_grpc_timeout(Some(ms(50)), Nanos::ZERO, ms(100)),
            ms(50)
        );
        // No header: the cap, or no timeout without a cap.
        assert_eq!(envoy_grpc_timeout(None, s(2), Nanos::ZERO), s(2));
        assert_eq!(
            envoy_grpc_timeout(None, Nanos::ZERO, Nanos::ZERO),
            Nanos::ZERO
        );
        // Cap 0 trusts the client.
        assert_eq!(
            envoy_grpc_timeout(Some(s(60)), Nanos::ZERO, Nanos::ZERO),
            s(60)
        );
    }

    #[test]
    fn envoy_expected_timeout_header_values() {
        let s = Nanos::from_secs;
        // First attempt: per-try 1 s under a 15 s route.
        assert_eq!(
            envoy_expected_timeout(Nanos::ZERO, s(15), Some(s(1)), false),
            Some(s(1))
        );
        // No per-try: the route timeout minus the time already spent.
        assert_eq!(
            envoy_expected_timeout(s(4), s(15), None, false),
            Some(s(11))
        );
        // Per-try larger than what is left: capped.
        assert_eq!(
            envoy_expected_timeout(ms(14_500), s(15), Some(s(1)), false),
            Some(ms(500))
        );
        // Hedging on per-try timeout advertises the route time.
        assert_eq!(
            envoy_expected_timeout(s(2), s(15), Some(s(1)), true),
            Some(s(13))
        );
        // Route time gone: 1 ms.
        assert_eq!(
            envoy_expected_timeout(s(16), s(15), None, false),
            Some(ms(1))
        );
        // No timeout at all: no header.
        assert_eq!(envoy_expected_timeout(s(2), Nanos::ZERO, None, false), None);
        assert_eq!(
            envoy_expected_timeout(s(2), Nanos::ZERO, Some(s(1)), false),
            Some(s(1))
        );
    }
}
