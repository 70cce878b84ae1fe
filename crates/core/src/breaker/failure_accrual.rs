//! `failure_accrual` (being written).
