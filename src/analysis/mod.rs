//! What scopetrail derives from staged evidence: 429 bursts, credential drift; findings later.

pub mod bursts;
pub mod drift;
