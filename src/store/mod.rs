//! Object storage: the exported datasets and the state area (checkpoints, staging, plans)
//! both live behind `ObjectStore`, so a local folder and a bucket behave the same.

pub mod keys;
pub mod local;
pub mod s3;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Result;
use async_trait::async_trait;

/// User metadata stored with an object (on S3: `x-amz-meta-*`).
pub type Metadata = BTreeMap<String, String>;

/// What a conditional replace compares: a local content hash, or an S3 ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(pub String);

pub enum Body {
    Bytes(Vec<u8>),
    /// Uploaded from this file, so large objects are never held in memory.
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub size: u64,
    pub metadata: Metadata,
}

#[derive(Debug)]
pub enum PutOutcome {
    Created,
    /// The key was taken; what is there, so the caller can tell a rerun from a conflict.
    AlreadyExists(ObjectInfo),
}

#[derive(Debug)]
pub enum ReplaceOutcome {
    /// Written; the object's new version.
    Replaced(Version),
    /// The object was not at the expected version (or existed when it was expected absent).
    Conflict,
}

/// A readable local file holding an object's bytes.
pub enum LocalCopy {
    /// The object itself, in a local store.
    InPlace(PathBuf),
    /// A download, deleted on drop.
    Downloaded(tempfile::TempPath),
}

impl LocalCopy {
    pub fn path(&self) -> &Path {
        match self {
            LocalCopy::InPlace(p) => p,
            LocalCopy::Downloaded(p) => p,
        }
    }
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Where the objects go, for people: a folder or `s3://bucket/prefix`.
    fn location(&self) -> String;

    /// Creates the object only if the key is free. Nothing stored is ever overwritten: an
    /// overwrite is a second ingest for every SIEM.
    async fn put_new(&self, key: &str, body: Body, metadata: &Metadata) -> Result<PutOutcome>;

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>>;

    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>>;

    /// Keys under a prefix, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Deleting a missing key succeeds.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Writes the object only if it is still at `expected` (`None`: only if it is absent).
    async fn replace(
        &self,
        key: &str,
        body: Vec<u8>,
        expected: Option<&Version>,
    ) -> Result<ReplaceOutcome>;

    /// The object's bytes as a local file, for streaming readers.
    async fn fetch_to_file(&self, key: &str, scratch: &Path) -> Result<Option<LocalCopy>>;

    /// Removes what interrupted writes left behind, older than `before`.
    async fn clean_leftovers(&self, before: SystemTime) -> Result<usize>;

    /// The folder behind a store on this host's file system, if it is one: processes sharing
    /// it can prove each other alive with file locks (see `lease`).
    fn local_root(&self) -> Option<&Path> {
        None
    }

    /// The store cannot refuse a second writer (a server that ignores conditional writes):
    /// the process must be the only one writing, and the run proves it with a host-local lock.
    fn single_writer(&self) -> bool {
        false
    }
}

pub type SharedStore = Arc<dyn ObjectStore>;

/// Rejects keys that could escape the store's root, or collide with what a store keeps
/// beside objects (names starting with `.`: temporary files, metadata, locks).
pub fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|seg| !seg.is_empty() && !seg.starts_with('.'));
    anyhow::ensure!(ok, "invalid object key {key:?}");
    Ok(())
}
