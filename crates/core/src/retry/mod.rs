//! Retries, back-off, budgets, hedging, deadlines (being written).
pub mod policy;
pub mod backoff;
pub mod budget;
pub mod hedge;
