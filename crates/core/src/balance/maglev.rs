//! `maglev` (being written).
