//! `least_conn` (being written).
