//! `hedge` (being written).
