//! `outlier` (being written).
