//! `token_bucket` (being written).
