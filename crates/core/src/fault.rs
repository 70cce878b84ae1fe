//! `fault` (being written).
