//! `budget` (being written).
