//! SIGTERM (systemd, Kubernetes) and SIGINT (Ctrl-C) ask a run or the daemon to stop
//! gracefully; a second signal stops at once.

use anyhow::Result;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

pub fn cancel_on_signals(token: CancellationToken) -> Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let mut asked = false;
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            if asked {
                eprintln!("scopetrail: asked twice: stopping now");
                std::process::exit(130);
            }
            asked = true;
            tracing::warn!("asked to stop: finishing the current page");
            token.cancel();
        }
    });
    Ok(())
}
