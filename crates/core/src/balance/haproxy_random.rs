//! `haproxy_random` (being written).
