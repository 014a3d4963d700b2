//! What scopetrail derives from staged evidence: 429 bursts now; drift and findings later.

pub mod bursts;
