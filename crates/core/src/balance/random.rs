//! `random` (being written).
