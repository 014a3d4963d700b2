//! The embedded default: the object layout under a local folder, no service needed.
//!
//! Create-only writes go to a temporary file in the target folder, are fsynced, then
//! hard-linked into place (`link` fails if the name exists, where a plain rename would
//! overwrite), then the folder is fsynced; new folders are fsynced into their parents too.
//! Metadata lives in a hidden sidecar (`.<name>.meta.json`), itself linked create-only before
//! the object, so an object never appears without its hash and two writers racing on a key
//! cannot end up with one's object and the other's hash. Names starting with `.` are hidden
//! from Hive-style readers and from `list`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{
    Body, LocalCopy, Metadata, ObjectInfo, ObjectStore, PutOutcome, ReplaceOutcome, Version,
    check_key,
};

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)
            .with_context(|| format!("creating the store folder {}", root.display()))?;
        Ok(LocalStore { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(PathBuf) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || f(root)).await?
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }

    async fn put_new(&self, key: &str, body: Body, metadata: &Metadata) -> Result<PutOutcome> {
        let path = self.path(key)?;
        let metadata = metadata.clone();
        self.blocking(move |_| put_new(&path, &body, &metadata))
            .await
            .with_context(|| format!("writing {key}"))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let path = self.path(key)?;
        self.blocking(move |_| info(&path)).await
    }

    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>> {
        let path = self.path(key)?;
        self.blocking(move |_| read_versioned(&path))
            .await
            .with_context(|| format!("reading {key}"))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = prefix.to_string();
        self.blocking(move |root| list(&root, &prefix)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        self.blocking(move |_| {
            remove_if_exists(&sidecar_path(&path))?;
            remove_if_exists(&path)?;
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
            Ok(())
        })
        .await
        .with_context(|| format!("deleting {key}"))
    }

    async fn replace(
        &self,
        key: &str,
        body: Vec<u8>,
        expected: Option<&Version>,
    ) -> Result<ReplaceOutcome> {
        let path = self.path(key)?;
        let expected = expected.cloned();
        self.blocking(move |root| replace(&root, &path, &body, expected.as_ref()))
            .await
            .with_context(|| format!("replacing {key}"))
    }

    async fn fetch_to_file(&self, key: &str, _scratch: &Path) -> Result<Option<LocalCopy>> {
        let path = self.path(key)?;
        Ok(path.is_file().then_some(LocalCopy::InPlace(path)))
    }

    async fn clean_leftovers(&self, before: SystemTime) -> Result<usize> {
        self.blocking(move |root| clean_leftovers(&root, before))
            .await
    }
}

fn sidecar_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.meta.json"))
}

fn temp_path(dir: &Path) -> PathBuf {
    dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A fully written, fsynced temporary file beside its destination.
fn write_temp(dir: &Path, body: &Body) -> Result<PathBuf> {
    let tmp = temp_path(dir);
    let result = (|| -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        match body {
            Body::Bytes(bytes) => file.write_all(bytes)?,
            Body::File(src) => {
                io::copy(&mut File::open(src)?, &mut file)?;
            }
        }
        file.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e.into());
    }
    Ok(tmp)
}

/// How old a sidecar without its object must be to count as left by a crashed writer rather
/// than by one still writing.
const STALE_SIDECAR: std::time::Duration = std::time::Duration::from_secs(3600);

fn put_new(path: &Path, body: &Body, metadata: &Metadata) -> Result<PutOutcome> {
    let dir = path.parent().context("object key without a folder")?;
    create_dirs(dir)?;
    if let Some(existing) = info(path)? {
        return Ok(PutOutcome::AlreadyExists(existing));
    }
    // The metadata first, create-only: whoever links it is the only one who may link the
    // object under it.
    let sidecar = sidecar_path(path);
    let ours = serde_json::to_vec(metadata)?;
    let tmp = write_temp(dir, &Body::Bytes(ours.clone()))?;
    let linked = fs::hard_link(&tmp, &sidecar);
    match linked {
        Ok(()) => remove_if_exists(&tmp)?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let theirs = fs::read(&sidecar)?;
            if let Some(existing) = info(path)? {
                remove_if_exists(&tmp)?;
                return Ok(PutOutcome::AlreadyExists(existing));
            }
            let stale = fs::metadata(&sidecar)?
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_SIDECAR);
            if theirs != ours && !stale {
                remove_if_exists(&tmp)?;
                return Err(crate::error::Temporary(format!(
                    "{} is being written by another process with other content",
                    path.display()
                ))
                .into());
            }
            // Ours already (a retry), or left by a writer that crashed before its object.
            fs::rename(&tmp, &sidecar)?;
        }
        Err(e) => {
            remove_if_exists(&tmp)?;
            return Err(anyhow::Error::new(e)
                .context("linking into place (the store folder must support hard links)"));
        }
    }
    let tmp = write_temp(dir, body)?;
    let linked = fs::hard_link(&tmp, path);
    remove_if_exists(&tmp)?;
    match linked {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(PutOutcome::Created)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match info(path)? {
            Some(existing) => Ok(PutOutcome::AlreadyExists(existing)),
            None => anyhow::bail!("{} appeared and vanished while writing", path.display()),
        },
        Err(e) => Err(anyhow::Error::new(e)
            .context("linking into place (the store folder must support hard links)")),
    }
}

/// `create_dir_all`, with each new folder fsynced into its parent so a power loss cannot
/// drop the folder of an object already reported written.
fn create_dirs(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

fn info(path: &Path) -> Result<Option<ObjectInfo>> {
    let size = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let metadata = match fs::read(sidecar_path(path)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("reading the metadata of {}", path.display()))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Metadata::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(ObjectInfo { size, metadata }))
}

fn content_version(bytes: &[u8]) -> Version {
    Version(hex::encode(&Sha256::digest(bytes)[..16]))
}

fn read_versioned(path: &Path) -> Result<Option<(Vec<u8>, Version)>> {
    match fs::read(path) {
        Ok(bytes) => {
            let version = content_version(&bytes);
            Ok(Some((bytes, version)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Compare-and-swap under an exclusive lock on the store, so two processes on this host
/// cannot both win; the version is a hash of the content, which unlike an mtime cannot
/// collide for two writes within one clock tick.
fn replace(
    root: &Path,
    path: &Path,
    body: &[u8],
    expected: Option<&Version>,
) -> Result<ReplaceOutcome> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(".scopetrail.lock"))?;
    lock.lock()?;
    let current = read_versioned(path)?.map(|(_, v)| v);
    if current.as_ref() != expected {
        return Ok(ReplaceOutcome::Conflict);
    }
    let dir = path.parent().context("object key without a folder")?;
    create_dirs(dir)?;
    let tmp = write_temp(dir, &Body::Bytes(body.to_vec()))?;
    fs::rename(&tmp, path)?;
    sync_dir(dir)?;
    Ok(ReplaceOutcome::Replaced(content_version(body)))
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

fn list(root: &Path, prefix: &str) -> Result<Vec<String>> {
    let dir = match prefix.rfind('/') {
        Some(i) => root.join(&prefix[..i]),
        None => root.to_path_buf(),
    };
    let mut keys = Vec::new();
    if !dir.is_dir() {
        return Ok(keys);
    }
    for entry in walkdir::WalkDir::new(&dir)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !is_hidden(&e.file_name().to_string_lossy()))
    {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let key = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if key.starts_with(prefix) {
            keys.push(key);
        }
    }
    keys.sort();
    Ok(keys)
}

fn clean_leftovers(root: &Path, before: SystemTime) -> Result<usize> {
    let mut removed = 0;
    for entry in walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(|e| e.ok())
    {
        let name = entry.file_name().to_string_lossy();
        let stale = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .is_some_and(|t| t < before);
        let orphan_sidecar = name.starts_with('.')
            && name.ends_with(".meta.json")
            && !entry
                .path()
                .with_file_name(&name[1..name.len() - ".meta.json".len()])
                .exists();
        if entry.file_type().is_file() && stale && (name.starts_with(".tmp-") || orphan_sidecar) {
            remove_if_exists(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(sha: &str) -> Metadata {
        Metadata::from([("sha256".to_string(), sha.to_string())])
    }

    #[tokio::test]
    async fn create_only_never_overwrites() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store = LocalStore::open(dir.path())?;
        let key = "v1/denials/tenant=a/dt=2026-03-02/x.csv.gz";
        let first = store
            .put_new(key, Body::Bytes(b"one".to_vec()), &meta("1"))
            .await?;
        assert!(matches!(first, PutOutcome::Created));
        let second = store
            .put_new(key, Body::Bytes(b"two".to_vec()), &meta("2"))
            .await?;
        match second {
            PutOutcome::AlreadyExists(info) => assert_eq!(info.metadata, meta("1")),
            PutOutcome::Created => panic!("overwrote an object"),
        }
        assert_eq!(store.get(key).await?.map(|(b, _)| b), Some(b"one".to_vec()));
        assert_eq!(
            store.list("v1/").await?,
            vec![key.to_string()],
            "sidecars and temps hidden"
        );
        Ok(())
    }

    #[tokio::test]
    async fn replace_is_compare_and_swap() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store = LocalStore::open(dir.path())?;
        let key = "_state/sources/s/checkpoint.json";
        assert!(matches!(
            store.replace(key, b"a".to_vec(), None).await?,
            ReplaceOutcome::Replaced(_)
        ));
        assert!(matches!(
            store.replace(key, b"b".to_vec(), None).await?,
            ReplaceOutcome::Conflict
        ));
        let (_, v1) = store.get(key).await?.expect("written");
        assert!(matches!(
            store.replace(key, b"b".to_vec(), Some(&v1)).await?,
            ReplaceOutcome::Replaced(_)
        ));
        assert!(
            matches!(
                store.replace(key, b"c".to_vec(), Some(&v1)).await?,
                ReplaceOutcome::Conflict
            ),
            "a stale version must lose"
        );
        assert_eq!(store.get(key).await?.map(|(b, _)| b), Some(b"b".to_vec()));
        Ok(())
    }

    #[tokio::test]
    async fn concurrent_replacers_one_wins_each_round() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store = std::sync::Arc::new(LocalStore::open(dir.path())?);
        let key = "_state/counter";
        store.replace(key, b"0".to_vec(), None).await?;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut wins = 0u32;
                for _ in 0..25 {
                    loop {
                        let (bytes, v) = store.get(key).await?.expect("exists");
                        let n: u32 = String::from_utf8(bytes)?.parse()?;
                        let next = (n + 1).to_string().into_bytes();
                        if let ReplaceOutcome::Replaced(_) =
                            store.replace(key, next, Some(&v)).await?
                        {
                            wins += 1;
                            break;
                        }
                    }
                }
                anyhow::Ok(wins)
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await??;
        }
        let (bytes, _) = store.get(key).await?.expect("exists");
        assert_eq!(
            String::from_utf8(bytes)?,
            total.to_string(),
            "no lost update"
        );
        assert_eq!(total, 200);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_writers_never_split_an_object_from_its_hash() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store = std::sync::Arc::new(LocalStore::open(dir.path())?);
        for round in 0..200 {
            let key = format!("v1/race/{round}.csv.gz");
            let writers: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|who| {
                    let (store, key) = (store.clone(), key.clone());
                    tokio::spawn(async move {
                        store
                            .put_new(&key, Body::Bytes(who.as_bytes().to_vec()), &meta(who))
                            .await
                    })
                })
                .collect();
            for w in writers {
                let _ = w.await?;
            }
            let (bytes, _) = store.get(&key).await?.expect("one writer won");
            let info = store.head(&key).await?.expect("exists");
            let who = String::from_utf8(bytes)?;
            assert_eq!(
                info.metadata,
                meta(&who),
                "round {round}: object of {who}, hash of the other"
            );
        }
        Ok(())
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "a//b",
            "./a",
            "a/.tmp-x",
            "v1/.x.meta.json",
        ] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn leftovers_are_cleaned() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store = LocalStore::open(dir.path())?;
        fs::create_dir_all(dir.path().join("v1"))?;
        fs::write(dir.path().join("v1/.tmp-1-abc"), b"partial")?;
        fs::write(dir.path().join("v1/.gone.csv.gz.meta.json"), b"{}")?;
        store
            .put_new("v1/kept", Body::Bytes(b"x".to_vec()), &Metadata::new())
            .await?;
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        assert_eq!(store.clean_leftovers(later).await?, 2);
        assert!(store.head("v1/kept").await?.is_some());
        assert!(dir.path().join("v1/.kept.meta.json").exists());
        Ok(())
    }
}
