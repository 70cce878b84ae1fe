//! `discovery` (being written).
