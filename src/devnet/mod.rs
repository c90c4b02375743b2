//! A local stand-in for the Archipelag.io network: [`CoordinatorDouble`] over a real
//! `nats-server`, used by the integration tests and by `island devnet` ([`run`]).

#[cfg(unix)]
pub mod docker_engine;
mod double;
pub mod fake_nvml;
mod http;
mod nats_server;
mod record;
pub mod run;

pub use double::{CoordinatorDouble, DoubleOptions, Observed, REPORTS_STREAM};
pub use http::HttpServer;
pub use nats_server::{NatsServer, ServerOptions};
