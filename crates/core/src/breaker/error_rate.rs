//! `error_rate` (being written).
