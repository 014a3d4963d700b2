//! HTTP semantics shared by every source: for now, reading the challenges of 401/403
//! responses (the engine's client, retries and pacing are not built yet).

pub mod challenge;
