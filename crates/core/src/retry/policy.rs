//! `policy` (being written).
