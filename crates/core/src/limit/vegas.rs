//! `vegas` (being written).
