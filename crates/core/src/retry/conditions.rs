//! `conditions`: which attempt outcomes Envoy's `retry_on` retries.
//!
//! Source: Envoy `source/common/router/retry_state_impl.cc`
//! (`wouldRetryFromHeaders`, `wouldRetryFromReset`) and
//! `source/common/router/router.cc` (`onPerTryTimeoutCommon` turns a per-try
//! timeout into a local reset). The table is in the [`policy`](super::policy)
//! docs. [`RetryConditions`] is the compiled, `Copy` form that the per-request
//! states ([`RetryState`](super::policy::RetryState),
//! [`HedgeState`](super::hedge::HedgeState)) carry; it has no state and no timers.

use crate::endpoint::Outcome;

/// One Envoy `retry_on` condition (written as Envoy spells it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum RetryOn {
    /// `5xx`: any 5xx response, reset, connect failure or per-try timeout.
    #[serde(rename = "5xx")]
    FiveXx,
    /// `gateway-error`: 502, 503, 504, resets, connect failures, per-try timeouts.
    #[serde(rename = "gateway-error")]
    GatewayError,
    /// `reset`: resets, connect failures, per-try timeouts.
    #[serde(rename = "reset")]
    Reset,
    /// `connect-failure`: connection failures only.
    #[serde(rename = "connect-failure")]
    ConnectFailure,
    /// `retriable-4xx`: 409 Conflict.
    #[serde(rename = "retriable-4xx")]
    Retriable4xx,
    /// `retriable-status-codes`: the codes in `retriable_status_codes`.
    #[serde(rename = "retriable-status-codes")]
    RetriableStatusCodes,
}

impl RetryOn {
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The compiled retry conditions: which outcomes a policy retries. Small and
/// `Copy`, so that per-request state can carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryConditions {
    on: u8,
    /// Bit `s` set: status `s` is in `retriable_status_codes` (0–639).
    codes: [u64; 10],
}

impl RetryConditions {
    /// Conditions from `retry_on` and the retriable status codes (codes
    /// matter only with [`RetryOn::RetriableStatusCodes`]; codes ≥ 640 are ignored).
    pub fn new(retry_on: &[RetryOn], codes: &[u16]) -> RetryConditions {
        let mut c = RetryConditions {
            on: retry_on.iter().fold(0, |acc, r| acc | r.bit()),
            codes: [0; 10],
        };
        for &s in codes {
            if let Some(w) = c.codes.get_mut(usize::from(s / 64)) {
                *w |= 1 << (s % 64);
            }
        }
        c
    }

    fn has(&self, r: RetryOn) -> bool {
        self.on & r.bit() != 0
    }

    /// Whether `outcome` triggers a retry. `per_try_timeout` says whether a
    /// `Timeout` was a per-try timeout (retried like a reset) rather than
    /// the end of the route timeout (never retried).
    #[inline]
    pub fn is_retriable(&self, outcome: Outcome, per_try_timeout: bool) -> bool {
        use RetryOn::*;
        let resetish = || self.has(Reset) || self.has(FiveXx) || self.has(GatewayError);
        match outcome {
            Outcome::Status(s) => {
                (self.has(FiveXx) && (500..600).contains(&s))
                    || (self.has(GatewayError) && matches!(s, 502..=504))
                    || (self.has(Retriable4xx) && s == 409)
                    || (self.has(RetriableStatusCodes)
                        && self
                            .codes
                            .get(usize::from(s / 64))
                            .is_some_and(|w| w & (1 << (s % 64)) != 0))
            }
            Outcome::Reset => resetish(),
            Outcome::ConnectFailure => resetish() || self.has(ConnectFailure),
            Outcome::Timeout => per_try_timeout && resetish(),
            Outcome::LocalReject => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_on_table_matches_envoy() {
        use Outcome::*;
        let c = |on: &[RetryOn]| RetryConditions::new(on, &[429]);
        let five = c(&[RetryOn::FiveXx]);
        assert!(five.is_retriable(Status(500), false) && five.is_retriable(Status(599), false));
        assert!(!five.is_retriable(Status(429), false) && !five.is_retriable(Status(409), false));
        assert!(five.is_retriable(Reset, false) && five.is_retriable(ConnectFailure, false));
        assert!(five.is_retriable(Timeout, true) && !five.is_retriable(Timeout, false));
        let gw = c(&[RetryOn::GatewayError]);
        assert!(!gw.is_retriable(Status(500), false) && gw.is_retriable(Status(503), false));
        let cf = c(&[RetryOn::ConnectFailure]);
        assert!(cf.is_retriable(ConnectFailure, false));
        assert!(!cf.is_retriable(Reset, false) && !cf.is_retriable(Status(503), false));
        assert!(!cf.is_retriable(Timeout, true));
        assert!(c(&[RetryOn::Reset]).is_retriable(Timeout, true));
        assert!(!c(&[RetryOn::Reset]).is_retriable(Status(503), false));
        assert!(c(&[RetryOn::Retriable4xx]).is_retriable(Status(409), false));
        let codes = c(&[RetryOn::RetriableStatusCodes]);
        assert!(codes.is_retriable(Status(429), false) && !codes.is_retriable(Status(503), false));
        // The codes need the condition.
        assert!(!five.is_retriable(Status(429), false));
        for on in [RetryOn::FiveXx, RetryOn::Reset, RetryOn::ConnectFailure] {
            assert!(!c(&[on]).is_retriable(LocalReject, false));
        }
    }
}
