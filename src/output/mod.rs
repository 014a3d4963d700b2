//! From staging to objects: CSV encoding, object keys, export plans, manifests and markers,
//! and the export itself.

pub mod athena;
pub mod csv;
pub mod derive;
pub mod export;
pub mod manifest;
pub mod plan;
pub mod read;
