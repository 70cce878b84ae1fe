//! `smooth_round_robin` (being written).
