//! `thresholds` (being written).
