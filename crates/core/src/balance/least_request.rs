//! `least_request` (being written).
