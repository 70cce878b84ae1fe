//! Virtual time: integer nanoseconds, never a clock.
//!
//! [`Time`] is an instant, counted in nanoseconds since the run started.
//! [`Nanos`] is a span between two instants. Both are plain `u64`s, so the
//! arithmetic is exact and identical on every machine; there is no
//! floating-point time anywhere in meshsim's decisions.
//!
//! Durations in configuration files are written the way people write them:
//! `"250ms"`, `"1.5s"`, `"30us"`, `"2m"`. [`Nanos`] parses and prints that form.

use core::fmt;
use core::ops::{Add, AddAssign, Mul, Sub};
use core::str::FromStr;

/// An instant of virtual time: nanoseconds since the run started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub u64);

/// A span of time in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nanos(pub u64);

// === impl Time ===

impl Time {
    /// The start of the run.
    pub const ZERO: Time = Time(0);
    /// The latest representable instant; used as "never".
    pub const MAX: Time = Time(u64::MAX);

    /// Time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Time) -> Nanos {
        Nanos(self.0.saturating_sub(earlier.0))
    }

    /// This instant plus `d`, saturating at [`Time::MAX`].
    pub fn saturating_add(self, d: Nanos) -> Time {
        Time(self.0.saturating_add(d.0))
    }

    /// Seconds since the start of the run, for reports.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl Add<Nanos> for Time {
    type Output = Time;
    fn add(self, rhs: Nanos) -> Time {
        self.saturating_add(rhs)
    }
}

impl AddAssign<Nanos> for Time {
    fn add_assign(&mut self, rhs: Nanos) {
        *self = *self + rhs;
    }
}

impl Sub<Time> for Time {
    type Output = Nanos;
    fn sub(self, rhs: Time) -> Nanos {
        self.saturating_since(rhs)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={}", Nanos(self.0))
    }
}

// === impl Nanos ===

impl Nanos {
    /// No time at all.
    pub const ZERO: Nanos = Nanos(0);
    /// The longest representable span.
    pub const MAX: Nanos = Nanos(u64::MAX);

    /// `n` nanoseconds.
    pub const fn from_nanos(n: u64) -> Nanos {
        Nanos(n)
    }
    /// `n` microseconds.
    pub const fn from_micros(n: u64) -> Nanos {
        Nanos(n.saturating_mul(1_000))
    }
    /// `n` milliseconds.
    pub const fn from_millis(n: u64) -> Nanos {
        Nanos(n.saturating_mul(1_000_000))
    }
    /// `n` seconds.
    pub const fn from_secs(n: u64) -> Nanos {
        Nanos(n.saturating_mul(1_000_000_000))
    }
    /// A span from fractional seconds, rounded to the nearest nanosecond and
    /// clamped to `[0, MAX]` (NaN gives zero).
    pub fn from_secs_f64(s: f64) -> Nanos {
        let ns = (s * 1e9).round();
        if ns.is_nan() || ns <= 0.0 {
            Nanos::ZERO
        } else if ns >= u64::MAX as f64 {
            Nanos::MAX
        } else {
            Nanos(ns as u64)
        }
    }
    /// The span in nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// The span in fractional seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    /// The span in fractional milliseconds.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// Saturating multiplication by an integer.
    pub const fn saturating_mul(self, k: u64) -> Nanos {
        Nanos(self.0.saturating_mul(k))
    }
    /// Saturating addition.
    pub const fn saturating_add(self, d: Nanos) -> Nanos {
        Nanos(self.0.saturating_add(d.0))
    }
    /// Saturating subtraction.
    pub const fn saturating_sub(self, d: Nanos) -> Nanos {
        Nanos(self.0.saturating_sub(d.0))
    }
    /// Multiplication by a non-negative factor, rounded; NaN or negative gives zero.
    pub fn mul_f64(self, k: f64) -> Nanos {
        Nanos::from_secs_f64(self.as_secs_f64() * k)
    }
}

impl Add for Nanos {
    type Output = Nanos;
    fn add(self, rhs: Nanos) -> Nanos {
        self.saturating_add(rhs)
    }
}

impl Sub for Nanos {
    type Output = Nanos;
    fn sub(self, rhs: Nanos) -> Nanos {
        self.saturating_sub(rhs)
    }
}

impl Mul<u64> for Nanos {
    type Output = Nanos;
    fn mul(self, rhs: u64) -> Nanos {
        self.saturating_mul(rhs)
    }
}

impl From<core::time::Duration> for Nanos {
    fn from(d: core::time::Duration) -> Nanos {
        Nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl From<Nanos> for core::time::Duration {
    fn from(n: Nanos) -> core::time::Duration {
        core::time::Duration::from_nanos(n.0)
    }
}

const UNITS: [(&str, u64); 7] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("µs", 1_000),
    ("ns", 1),
];

impl fmt::Display for Nanos {
    /// Prints the largest unit that represents the span exactly
    /// (`250ms`, `1500us`, `0s`), so printing and parsing round-trip.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        for (unit, scale) in [
            ("h", UNITS[0].1),
            ("m", UNITS[1].1),
            ("s", UNITS[2].1),
            ("ms", UNITS[3].1),
            ("us", UNITS[4].1),
        ] {
            if self.0 % scale == 0 {
                return write!(f, "{}{}", self.0 / scale, unit);
            }
        }
        write!(f, "{}ns", self.0)
    }
}

/// Why a duration string did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}; expected a number and a unit, e.g. \"250ms\", \"1.5s\", \"30us\", \"2m\" (units: ns, us, ms, s, m, h)")]
pub struct ParseDurationError {
    input: String,
    reason: &'static str,
}

impl FromStr for Nanos {
    type Err = ParseDurationError;

    fn from_str(input: &str) -> Result<Nanos, ParseDurationError> {
        let err = |reason| ParseDurationError {
            input: input.to_owned(),
            reason,
        };
        let s = input.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("missing unit"))?;
        let (num, unit) = s.split_at(split);
        if num.is_empty() {
            return Err(err("missing number"));
        }
        let scale = UNITS
            .iter()
            .find(|(u, _)| *u == unit.trim())
            .map(|(_, s)| *s)
            .ok_or_else(|| err("unknown unit"))?;
        let (int, frac) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if frac.contains('.') {
            return Err(err("more than one decimal point"));
        }
        let int: u64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| err("number too large"))?
        };
        let mut total = int.checked_mul(scale).ok_or_else(|| err("too long"))?;
        // Exact decimal fraction: digits beyond nanosecond precision are dropped.
        let mut place = scale;
        for d in frac.bytes() {
            place /= 10;
            if place == 0 {
                break;
            }
            total = total
                .checked_add(u64::from(d - b'0') * place)
                .ok_or_else(|| err("too long"))?;
        }
        Ok(Nanos(total))
    }
}

impl serde::Serialize for Nanos {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Nanos {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Nanos, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Nanos;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"250ms\" or \"1.5s\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Nanos, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Nanos, E> {
                if v == 0 {
                    Ok(Nanos::ZERO)
                } else {
                    Err(E::custom(format!(
                        "a bare number ({v}) has no unit; write e.g. \"{v}ms\""
                    )))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Nanos, E> {
                if v < 0 {
                    Err(E::custom(format!("a duration cannot be negative ({v})")))
                } else {
                    self.visit_u64(v as u64)
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The pattern a duration string matches, as [`Nanos`]'s parser reads it:
/// a decimal number, an optional space, and a unit.
#[cfg(feature = "schema")]
const DURATION_PATTERN: &str = r"^\s*([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*(ns|us|µs|ms|s|m|h)\s*$";

/// A duration string such as `"250ms"`, or the integer 0.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for Nanos {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        "meshsim_core::Nanos".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: a number and a unit (ns, us, ms, s, m, h), e.g. \"250ms\", \"1.5s\", \"30us\", \"2m\"; or 0.",
            "anyOf": [
                { "type": "string", "pattern": DURATION_PATTERN, "examples": ["250ms", "1.5s", "30us"] },
                { "type": "integer", "const": 0 }
            ]
        })
    }
}

/// `x.round().max(0.0) as u64` (half away from zero, negatives and NaN to
/// zero, saturating), without the call into libm's `round` that the
/// baseline x86-64 target makes for `f64::round`: the simulator rounds
/// every sampled duration, so it shows up in profiles. Exact, not an
/// approximation: below 2^53 the fraction `x - trunc(x)` is computed
/// without rounding error, and from 2^52 up every `f64` is an integer.
///
/// Below 2^63 (every duration a run sees) it converts through `i64`: one
/// instruction each way on x86-64, where the unsigned conversions take a
/// sequence of several.
#[inline]
pub fn round_to_u64(x: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    if (0.0..TWO_63).contains(&x) {
        let t = x as i64;
        return t as u64 + u64::from(x - t as f64 >= 0.5);
    }
    if x >= TWO_64 {
        return u64::MAX;
    }
    // `as` truncates toward zero and maps negatives and NaN to 0.
    let t = x as u64;
    t + u64::from(x - t as f64 >= 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_to_u64_is_std_round_exactly() {
        let edge = [
            0.0,
            -0.0,
            0.5,
            1.5,
            2.5,
            0.49999999999999994,
            4503599627370495.5, // 2^52 - 0.5: the last half-integer
            4503599627370496.0,
            9007199254740993.0,
            -0.5,
            -3.7,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            9_223_372_036_854_775_808.0, // 2^63: where the fast path ends
            9_223_372_036_854_775_808f64.next_down(),
            9_223_372_036_854_775_808f64.next_up(),
            1.844_674_407_370_955e19,
            1.8446744073709552e19,
            1e300,
            f64::MIN_POSITIVE,
        ];
        let std = |x: f64| x.round().max(0.0) as u64;
        for x in edge {
            assert_eq!(round_to_u64(x), std(x), "{x:e}");
        }
        // And a sweep of magnitudes with fractions near one half.
        let mut x: f64 = 1e-3;
        while x < 1e20 {
            for d in [-1e-9, 0.0, 1e-9, 0.25, 0.5, 0.75] {
                for y in [x + d, x.next_up(), x.next_down(), x + 0.5] {
                    assert_eq!(round_to_u64(y), std(y), "{y:e}");
                }
            }
            x *= 1.37;
        }
    }

    #[test]
    fn parses_common_forms() {
        assert_eq!("250ms".parse::<Nanos>().unwrap(), Nanos::from_millis(250));
        assert_eq!("1.5s".parse::<Nanos>().unwrap(), Nanos::from_millis(1500));
        assert_eq!("30us".parse::<Nanos>().unwrap(), Nanos::from_micros(30));
        assert_eq!("30µs".parse::<Nanos>().unwrap(), Nanos::from_micros(30));
        assert_eq!("2m".parse::<Nanos>().unwrap(), Nanos::from_secs(120));
        assert_eq!("1h".parse::<Nanos>().unwrap(), Nanos::from_secs(3600));
        assert_eq!("0.000000001s".parse::<Nanos>().unwrap(), Nanos(1));
        assert_eq!(".5ms".parse::<Nanos>().unwrap(), Nanos::from_micros(500));
    }

    #[test]
    fn rejects_bad_forms_with_reason() {
        for bad in [
            "",
            "10",
            "ms",
            "1.2.3s",
            "5 parsecs",
            "-1s",
            "99999999999999h",
        ] {
            let e = bad.parse::<Nanos>().unwrap_err().to_string();
            assert!(e.contains("expected a number and a unit"), "{bad}: {e}");
        }
    }

    #[test]
    fn display_round_trips() {
        for n in [
            0,
            1,
            999,
            1_000,
            1_500_000,
            250_000_000,
            60_000_000_000,
            7_200_000_000_000,
        ] {
            let s = Nanos(n).to_string();
            assert_eq!(s.parse::<Nanos>().unwrap(), Nanos(n), "{s}");
        }
        assert_eq!(Nanos::from_millis(250).to_string(), "250ms");
        assert_eq!(Nanos::from_secs(90).to_string(), "90s");
    }

    #[test]
    fn time_arithmetic_saturates() {
        assert_eq!(Time(5) - Time(9), Nanos::ZERO);
        assert_eq!(Time::MAX + Nanos(1), Time::MAX);
        assert_eq!(Time(10) + Nanos(5), Time(15));
    }
}
