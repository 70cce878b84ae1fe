//! `client_wrr` (being written).
