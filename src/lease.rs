//! Leases (DESIGN §5): one per source for collecting and one per job for exporting, so that
//! runs started together (a timer, cron, someone during an incident, the daemon) each do a
//! piece of work once. A lease is an object in the state area with an owner, a generation
//! and an expiry, renewed while the work goes on and taken over after expiry only by a
//! conditional replace on the version that was read. Holders check it again (fencing) before a
//! checkpoint or an export pointer moves.
//!
//! Leases save work; they are not what makes reruns safe (deterministic plans, create-only
//! keys and conditional replaces are). Expiry is wall-clock time, never `--now`.
//!
//! Where the state area is a local folder, each process also holds a file lock
//! (`.locks/<owner>.lock`) while it lives: if another process can take that lock, the holder is
//! dead and its leases are taken over at once instead of after expiry. File locks work across
//! PID namespaces and containers sharing the folder, where looking for the process would not.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::error::Temporary;
use crate::model::rfc3339_ms;
use crate::store::{ReplaceOutcome, SharedStore, Version};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseRecord {
    owner: String,
    generation: u64,
    /// Epoch milliseconds, wall clock; 0 when released.
    expires_at_ms: i64,
    acquired_at_ms: i64,
    what: String,
}

/// Another process holds the work.
#[derive(Debug, Clone, Serialize)]
pub struct Busy {
    pub holder: String,
    pub until: String,
}

pub enum Acquired {
    Held(Lease),
    Busy(Busy),
}

/// Takes leases for one process.
pub struct Leases {
    store: SharedStore,
    owner: String,
    ttl: Duration,
    liveness: Option<Liveness>,
    /// This process holds the host lock of a single-writer store: any other holder of a
    /// lease is a process that died.
    sole_writer: bool,
}

/// This process's lock, proof of life to the others sharing the folder.
struct Liveness {
    dir: PathBuf,
    path: PathBuf,
    _held: File,
}

impl Drop for Liveness {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Older than any lease: a dead process's lock file is no longer needed as evidence.
const STALE_LOCK: Duration = Duration::from_secs(24 * 3600);

fn lock_file_name(owner: &str) -> String {
    format!("{}.lock", owner.replace([':', '/'], "_"))
}

impl Leases {
    pub fn new(store: SharedStore, ttl: Duration) -> Self {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let owner = format!(
            "{host}:{}:{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let liveness = store.local_root().and_then(|root| {
            let dir = root.join(".locks");
            match Liveness::hold(&dir, &owner) {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot hold a liveness lock: crashed runs' leases will be waited out");
                    None
                }
            }
        });
        Leases {
            store,
            owner,
            ttl,
            liveness,
            sole_writer: false,
        }
    }

    /// Under a `HostLock`, no other live process writes the store: leases left by others are
    /// taken over at once.
    pub fn trust_host_lock(&mut self) {
        self.sole_writer = true;
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// A holder whose liveness lock another process can take is dead: its lease need not be
    /// waited out. Without a lock file to try (another host, another folder), it is alive.
    fn holder_is_gone(&self, holder: &str) -> bool {
        if self.sole_writer {
            return holder != self.owner;
        }
        let Some(liveness) = &self.liveness else {
            return false;
        };
        if holder == self.owner {
            return false;
        }
        Liveness::is_dead(&liveness.dir.join(lock_file_name(holder)))
    }

    /// Takes the lease `name` if it is free, released or expired.
    pub async fn acquire(&self, name: &str, what: &str) -> Result<Acquired> {
        let key = crate::store::keys::lease_key(name);
        let now = Utc::now().timestamp_millis();
        let current = self.store.get(&key).await?;
        let (generation, expected) = match &current {
            None => (1, None),
            Some((bytes, version)) => match serde_json::from_slice::<LeaseRecord>(bytes) {
                Ok(held) if held.expires_at_ms > now && !self.holder_is_gone(&held.owner) => {
                    return Ok(Acquired::Busy(Busy {
                        holder: held.owner,
                        until: rfc3339_ms(held.expires_at_ms),
                    }));
                }
                Ok(expired) => (expired.generation + 1, Some(version)),
                // Unreadable: nobody can be holding it.
                Err(_) => (1, Some(version)),
            },
        };
        let record = LeaseRecord {
            owner: self.owner.clone(),
            generation,
            expires_at_ms: now + ttl_ms(self.ttl),
            acquired_at_ms: now,
            what: what.to_string(),
        };
        match self
            .store
            .replace(&key, serde_json::to_vec_pretty(&record)?, expected)
            .await?
        {
            ReplaceOutcome::Replaced(version) => {
                crate::failpoint::hit("lease.after_acquire");
                Ok(Acquired::Held(Lease::start(
                    self.store.clone(),
                    key,
                    record,
                    version,
                    self.ttl,
                )))
            }
            // Someone took it between our read and our write.
            ReplaceOutcome::Conflict => {
                let holder = match self.store.get(&key).await? {
                    Some((bytes, _)) => serde_json::from_slice::<LeaseRecord>(&bytes).ok(),
                    None => None,
                };
                Ok(Acquired::Busy(Busy {
                    holder: holder
                        .as_ref()
                        .map_or("another process".into(), |r| r.owner.clone()),
                    until: holder.map_or(String::new(), |r| rfc3339_ms(r.expires_at_ms)),
                }))
            }
        }
    }
}

impl Liveness {
    fn hold(dir: &Path, owner: &str) -> std::io::Result<Liveness> {
        std::fs::create_dir_all(dir)?;
        // Lock files of dead processes are the evidence that their leases can be taken over:
        // cleared only once those leases have surely expired.
        for entry in std::fs::read_dir(dir)?.flatten() {
            let old = entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_LOCK);
            if old && Liveness::is_dead(&entry.path()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let path = dir.join(lock_file_name(owner));
        let held = lock_exclusive(&path)?.ok_or_else(|| std::io::Error::other("already locked"))?;
        Ok(Liveness {
            dir: dir.to_path_buf(),
            path,
            _held: held,
        })
    }

    /// True if a lock file is there and nobody holds its lock.
    fn is_dead(path: &Path) -> bool {
        let Ok(file) = OpenOptions::new().write(true).open(path) else {
            return false;
        };
        file.try_lock().is_ok()
    }
}

/// Creates the file if needed and takes its exclusive lock; `None` if another process holds it.
fn lock_exclusive(path: &Path) -> std::io::Result<Option<File>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The lock a run holds on a store that cannot refuse a second writer (it ignores conditional
/// writes): one process per host at a time. Kept in `$SCOPETRAIL_LOCK_DIR`, else systemd's
/// `$STATE_DIRECTORY`, else `$XDG_STATE_HOME/scopetrail`, else `~/.local/state/scopetrail`.
pub struct HostLock {
    path: PathBuf,
    _held: File,
}

impl HostLock {
    pub fn take(location: &str) -> Result<HostLock> {
        let dir = host_lock_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the lock folder {}", dir.display()))?;
        let digest = {
            use sha2::Digest;
            hex::encode(&sha2::Sha256::digest(location.as_bytes())[..8])
        };
        let path = dir.join(format!("single-writer-{digest}.lock"));
        let held = lock_exclusive(&path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        let Some(file) = held else {
            return Err(Temporary(format!(
                "another scopetrail process on this host is writing to {location} (it holds {}); a store that ignores conditional writes takes one writer at a time",
                path.display()
            ))
            .into());
        };
        Ok(HostLock { path, _held: file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn host_lock_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("SCOPETRAIL_LOCK_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dirs) = var("STATE_DIRECTORY") {
        // systemd passes every StateDirectory=, separated by colons.
        if let Some(first) = std::env::split_paths(&dirs).next() {
            return first;
        }
    }
    if let Some(dir) = var("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("scopetrail");
    }
    if let Some(home) = var("HOME") {
        return PathBuf::from(home).join(".local/state/scopetrail");
    }
    std::env::temp_dir().join("scopetrail")
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

struct Inner {
    store: SharedStore,
    key: String,
    record: LeaseRecord,
    version: Mutex<Version>,
    lost: AtomicBool,
    ttl: Duration,
}

/// A held lease, renewed in the background until released.
pub struct Lease {
    inner: Arc<Inner>,
    stop: CancellationToken,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl Lease {
    fn start(
        store: SharedStore,
        key: String,
        record: LeaseRecord,
        version: Version,
        ttl: Duration,
    ) -> Lease {
        let inner = Arc::new(Inner {
            store,
            key,
            record,
            version: Mutex::new(version),
            lost: AtomicBool::new(false),
            ttl,
        });
        let stop = CancellationToken::new();
        let renewer = tokio::spawn(renew(inner.clone(), stop.clone()));
        Lease {
            inner,
            stop,
            renewer: Some(renewer),
        }
    }

    pub fn generation(&self) -> u64 {
        self.inner.record.generation
    }

    /// Fencing: fails if the lease was lost or taken over, before state moves.
    pub async fn check(&self) -> Result<()> {
        let lost = || {
            Temporary(format!(
                "lost the lease {} (generation {}): another scopetrail process took the work over; this run stops before moving state",
                self.inner.key, self.inner.record.generation
            ))
        };
        if self.inner.lost.load(Ordering::SeqCst) {
            return Err(lost().into());
        }
        let (bytes, _) = self
            .inner
            .store
            .get(&self.inner.key)
            .await?
            .ok_or_else(lost)?;
        let current: LeaseRecord = serde_json::from_slice(&bytes).context("reading a lease")?;
        let ours = current.owner == self.inner.record.owner
            && current.generation == self.inner.record.generation
            && current.expires_at_ms > Utc::now().timestamp_millis();
        if ours { Ok(()) } else { Err(lost().into()) }
    }

    /// Gives the work back at once, rather than at expiry.
    pub async fn release(mut self) -> Result<()> {
        self.stop.cancel();
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.await;
        }
        if self.inner.lost.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut released = self.inner.record.clone();
        released.expires_at_ms = 0;
        let version = self.inner.version.lock().await.clone();
        // A conflict means someone took it over: nothing of ours to give back.
        self.inner
            .store
            .replace(
                &self.inner.key,
                serde_json::to_vec_pretty(&released)?,
                Some(&version),
            )
            .await?;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Not released (an error path): stop renewing and let it expire.
        self.stop.cancel();
    }
}

async fn renew(inner: Arc<Inner>, stop: CancellationToken) {
    let period = inner.ttl / 3;
    let mut expires_at_ms = inner.record.expires_at_ms;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
        let mut record = inner.record.clone();
        let now = Utc::now().timestamp_millis();
        record.expires_at_ms = now + ttl_ms(inner.ttl);
        let Ok(bytes) = serde_json::to_vec_pretty(&record) else {
            continue;
        };
        let mut version = inner.version.lock().await;
        match inner.store.replace(&inner.key, bytes, Some(&version)).await {
            Ok(ReplaceOutcome::Replaced(v)) => {
                *version = v;
                expires_at_ms = record.expires_at_ms;
            }
            Ok(ReplaceOutcome::Conflict) => {
                tracing::warn!(lease = %inner.key, "lease taken over by another process");
                inner.lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                tracing::warn!(lease = %inner.key, error = %format!("{e:#}"), "could not renew a lease");
                if now >= expires_at_ms {
                    inner.lost.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::local::LocalStore;

    fn leases(store: &SharedStore, ttl_ms: u64) -> Leases {
        Leases::new(store.clone(), Duration::from_millis(ttl_ms))
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_release_frees_it() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store: SharedStore = Arc::new(LocalStore::open(dir.path())?);
        let (a, b) = (leases(&store, 60_000), leases(&store, 60_000));
        let Acquired::Held(held) = a.acquire("source-x", "collect x").await? else {
            panic!("free lease not taken");
        };
        match b.acquire("source-x", "collect x").await? {
            Acquired::Busy(busy) => assert_eq!(busy.holder, a.owner()),
            Acquired::Held(_) => panic!("two holders"),
        }
        held.check().await?;
        held.release().await?;
        let Acquired::Held(second) = b.acquire("source-x", "collect x").await? else {
            panic!("released lease not taken");
        };
        assert_eq!(second.generation(), 2);
        second.release().await
    }

    #[tokio::test]
    async fn a_dead_holder_is_taken_over_at_once_a_live_one_is_not() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store: SharedStore = Arc::new(LocalStore::open(dir.path())?);
        let a = leases(&store, 60_000);
        let b = leases(&store, 60_000);
        let held = |owner: &str| LeaseRecord {
            owner: owner.to_string(),
            generation: 7,
            expires_at_ms: Utc::now().timestamp_millis() + 60_000,
            acquired_at_ms: 0,
            what: "collect x".into(),
        };
        // A crashed process: its lock file is there, nobody holds it.
        let dead = "host-x:4242:deadbeef";
        std::fs::write(dir.path().join(".locks").join(lock_file_name(dead)), b"")?;
        store
            .replace(
                "_state/leases/gone.json",
                serde_json::to_vec(&held(dead))?,
                None,
            )
            .await?;
        // A process elsewhere: no lock file to try.
        store
            .replace(
                "_state/leases/remote.json",
                serde_json::to_vec(&held("other:1:cafe"))?,
                None,
            )
            .await?;
        // A live process sharing the folder: b.
        store
            .replace(
                "_state/leases/alive.json",
                serde_json::to_vec(&held(b.owner()))?,
                None,
            )
            .await?;

        let Acquired::Held(taken) = a.acquire("gone", "collect x").await? else {
            panic!("a dead holder must not block");
        };
        assert_eq!(taken.generation(), 8);
        taken.release().await?;
        assert!(
            matches!(a.acquire("remote", "collect x").await?, Acquired::Busy(_)),
            "waited out"
        );
        assert!(
            matches!(a.acquire("alive", "collect x").await?, Acquired::Busy(_)),
            "alive"
        );
        drop(b);
        Ok(())
    }

    #[tokio::test]
    async fn renewal_keeps_it_and_expiry_hands_it_over_with_fencing() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store: SharedStore = Arc::new(LocalStore::open(dir.path())?);
        let (a, b) = (leases(&store, 1500), leases(&store, 1500));
        let Acquired::Held(held) = a.acquire("job-w", "export w").await? else {
            panic!("not taken");
        };
        // Renewed every 500 ms: still held two TTLs later.
        tokio::time::sleep(Duration::from_millis(3000)).await;
        assert!(matches!(
            b.acquire("job-w", "export w").await?,
            Acquired::Busy(_)
        ));
        held.check().await?;
        // The holder stalls (renewals stop) and the lease expires: the other takes it over.
        held.stop.cancel();
        tokio::time::sleep(Duration::from_millis(1700)).await;
        let Acquired::Held(taker) = b.acquire("job-w", "export w").await? else {
            panic!("expired lease not taken over");
        };
        assert_eq!(taker.generation(), 2);
        let err = held
            .check()
            .await
            .expect_err("the old holder must be fenced off");
        assert!(crate::error::is_temporary(&err), "{err:#}");
        taker.check().await?;
        taker.release().await
    }
}
