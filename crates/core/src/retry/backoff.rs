//! `backoff` (being written).
