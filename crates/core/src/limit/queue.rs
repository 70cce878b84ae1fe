//! `queue` (being written).
