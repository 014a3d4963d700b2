//! scopetrail keeps the paper trail of API integration failures: denials, failed webhook
//! deliveries and 429 bursts, with snapshots of the credentials involved, written as CSV to
//! object storage for a SIEM. Data flows one way: sources -> staging -> analysis -> output ->
//! store (DESIGN §3).

pub mod analysis;
pub mod bindings;
pub mod config;
pub mod daemon;
pub mod error;
pub mod explain;
pub mod failpoint;
pub mod gz;
pub mod http;
pub mod lease;
pub mod logging;
pub mod memory;
pub mod model;
pub mod output;
pub mod pipeline;
pub mod privacy;
pub mod probes;
pub mod report;
pub mod retention;
pub mod schedule;
pub mod signals;
pub mod sources;
pub mod staging;
pub mod store;
pub mod summary;
