//! `ring_hash` (being written).
