//! `health` (being written).
