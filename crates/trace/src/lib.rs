//! Real topologies and real traffic in (isotope graphs, Zipkin / OTLP / Jaeger
//! / Alibaba traces, arrival traces) and simulated traces out (OTLP/JSON).

pub mod generate;
