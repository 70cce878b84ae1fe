//! `peak_ewma` (being written).
