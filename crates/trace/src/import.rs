//! One entry point for every trace format.

use crate::record::ReplayRecord;
use crate::ImportError;

/// A trace format meshsim imports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Zipkin v2 JSON.
    Zipkin,
    /// OTLP/JSON.
    Otlp,
    /// Jaeger JSON.
    Jaeger,
    /// Alibaba cluster-trace-microservices call-graph CSV.
    Alibaba,
}

/// Imports `text` (the contents of `file`) as `format`.
pub fn import(format: Format, text: &str, file: &str) -> Result<ReplayRecord, ImportError> {
    match format {
        Format::Zipkin => crate::zipkin::import_zipkin(text, file),
        Format::Otlp => crate::otlp::import_otlp(text, file),
        Format::Jaeger => crate::jaeger::import_jaeger(text, file),
        Format::Alibaba => crate::alibaba::import_alibaba(text, file),
    }
}
