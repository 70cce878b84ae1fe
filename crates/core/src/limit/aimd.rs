//! `aimd` (being written).
