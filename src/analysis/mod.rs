//! What scopetrail derives from staged evidence: 429 bursts, credential drift, and the findings
//! that explain failures.

pub mod bursts;
pub mod correlate;
pub mod drift;
