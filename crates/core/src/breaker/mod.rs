//! Circuit breakers (being written).
pub mod thresholds;
pub mod error_rate;
pub mod failure_accrual;
