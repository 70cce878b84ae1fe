//! Real topologies and real traffic in (isotope graphs, Zipkin / OTLP / Jaeger
//! / Alibaba traces, arrival traces) and simulated traces out (OTLP/JSON).

pub mod alibaba;
pub mod compile;
mod error;
pub mod fit;
mod import;
pub mod isotope;
pub mod jaeger;
pub mod otlp;
pub mod record;
mod spans;
pub mod zipkin;

pub use compile::{compile, Compiled, ReplayMode};
pub use error::ImportError;
pub use import::{import, Format};
pub use record::{CallNode, ReplayRecord, Request, Status, Warning};

pub mod generate;
