//! Error classes that decide the exit code (see `ExitCode` in `main.rs`).

/// A failure a later run can get past without anyone changing anything: a store that is
/// unavailable, a vendor that times out, work that another process holds.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Temporary(pub String);

/// The configuration is wrong; nothing will work until someone fixes it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

pub fn is_config(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.is::<ConfigError>())
}

pub fn is_temporary(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.is::<Temporary>())
}

/// The process was asked to stop and stopped cleanly; nothing failed.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: the process was asked to stop")]
pub struct Interrupted;

pub fn is_interrupted(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.is::<Interrupted>())
}
