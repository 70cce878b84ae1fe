//! Rate limits, adaptive concurrency limits, server queues (being written).
pub mod token_bucket;
pub mod adaptive;
pub mod aimd;
pub mod vegas;
pub mod gradient2;
pub mod queue;
