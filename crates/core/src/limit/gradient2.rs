//! `gradient2` (being written).
