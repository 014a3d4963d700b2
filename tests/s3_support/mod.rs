//! A real S3 server on loopback for the tests: s3s-fs (files under a temporary folder) behind
//! SigV4 authentication, served over TCP so the scopetrail binary reaches it like any bucket.
//!
//! `Gate` sits between the protocol and the file system to give the tests their servers:
//! - conditional writes made atomic, as on S3 (s3s-fs checks the condition, then writes);
//! - conditional writes ignored, as Garage 2.5 does (the single-writer path);
//! - a share of requests failing with 503 SlowDown / 500 InternalError;
//! - the whole server stopped (connections refused) and started again on the same port.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use s3s_fs::FileSystem;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

pub const ACCESS_KEY: &str = "AKIDSCOPETRAILTEST";
/// Looked for in every object and log by the secret tests.
pub const SECRET_KEY: &str = "s3cr3t-S4UCE-never-in-any-object-or-log";
pub const BUCKET: &str = "evidence";

#[derive(Default)]
pub struct Switches {
    /// Every n-th request fails (0: none).
    pub fail_every: AtomicU64,
    pub requests: AtomicU64,
    pub failed: AtomicU64,
    /// Conditional headers are dropped before the file system sees them.
    pub ignore_conditions: AtomicBool,
    /// Requests (by S3 name, e.g. "PutObject") answered 403 AccessDenied.
    pub denied: std::sync::Mutex<Vec<&'static str>>,
    /// A PutObject whose key contains this text waits this long before it is written.
    pub slow_put: std::sync::Mutex<Option<(String, std::time::Duration)>>,
    /// Exported objects (`.csv.gz`) being put right now, and the most ever at once.
    pub object_puts: AtomicU64,
    pub object_puts_most: AtomicU64,
}

impl Switches {
    pub fn deny(&self, ops: &[&'static str]) {
        *self.denied.lock().expect("lock") = ops.to_vec();
    }
}

struct Gate {
    fs: Arc<FileSystem>,
    switches: Arc<Switches>,
    /// Makes check-then-write atomic, as S3's conditional writes are.
    writes: Arc<Mutex<()>>,
}

impl Gate {
    fn allow(&self, op: &'static str) -> S3Result<()> {
        if self.switches.denied.lock().expect("lock").contains(&op) {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        self.admit()
    }

    /// `allow` for requests with a body: a refusal reads the body first, as S3 does, so the
    /// client sees the 403 rather than a connection closed under its upload.
    async fn allow_upload(
        &self,
        op: &'static str,
        body: &mut Option<StreamingBlob>,
    ) -> S3Result<()> {
        let refused = self.allow(op);
        if refused.is_err()
            && let Some(mut body) = body.take()
        {
            use futures_util::StreamExt;
            while let Some(Ok(_)) = body.next().await {}
        }
        refused
    }

    /// A write runs to its end on its own task, one at a time: a client that goes away (or a
    /// server stopped mid-request) cannot leave an object half written, as on S3, where a
    /// write is committed whole or not at all.
    async fn write<T, F, Fut>(&self, op: F) -> S3Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<FileSystem>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = S3Result<T>> + Send + 'static,
    {
        let (fs, writes) = (self.fs.clone(), self.writes.clone());
        tokio::spawn(async move {
            let _one_at_a_time = writes.lock().await;
            op(fs).await
        })
        .await
        .map_err(|_| s3_error!(InternalError, "the write task failed"))?
    }

    fn admit(&self) -> S3Result<()> {
        let n = self.switches.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let every = self.switches.fail_every.load(Ordering::SeqCst);
        if every > 0 && n.is_multiple_of(every) {
            self.switches.failed.fetch_add(1, Ordering::SeqCst);
            return Err(if n.is_multiple_of(2) {
                s3_error!(SlowDown, "Please reduce your request rate.")
            } else {
                s3_error!(
                    InternalError,
                    "We encountered an internal error. Please try again."
                )
            });
        }
        Ok(())
    }

    fn ignoring(&self) -> bool {
        self.switches.ignore_conditions.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl S3 for Gate {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.allow("HeadBucket")?;
        self.fs.head_bucket(req).await
    }

    async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.allow_upload("PutObject", &mut req.input.body).await?;
        if self.ignoring() {
            req.input.if_none_match = None;
            req.input.if_match = None;
        }
        let object = req.input.key.ends_with(".csv.gz");
        let switches = &self.switches;
        if object {
            let now = switches.object_puts.fetch_add(1, Ordering::SeqCst) + 1;
            switches.object_puts_most.fetch_max(now, Ordering::SeqCst);
        }
        let delay = match &*switches.slow_put.lock().expect("lock") {
            Some((text, delay)) if req.input.key.contains(text.as_str()) => Some(*delay),
            _ => None,
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let put = self
            .write(move |fs| async move { fs.put_object(req).await })
            .await;
        if object {
            switches.object_puts.fetch_sub(1, Ordering::SeqCst);
        }
        put
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.allow("GetObject")?;
        self.fs.get_object(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.allow("HeadObject")?;
        self.fs.head_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.allow("DeleteObject")?;
        self.write(move |fs| async move { fs.delete_object(req).await })
            .await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.allow("ListObjectsV2")?;
        self.fs.list_objects_v2(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.allow("CreateMultipartUpload")?;
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.allow_upload("UploadPart", &mut req.input.body).await?;
        self.fs.upload_part(req).await
    }

    async fn complete_multipart_upload(
        &self,
        mut req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.allow("CompleteMultipartUpload")?;
        if self.ignoring() {
            req.input.if_none_match = None;
            req.input.if_match = None;
        }
        self.write(move |fs| async move { fs.complete_multipart_upload(req).await })
            .await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.allow("AbortMultipartUpload")?;
        self.fs.abort_multipart_upload(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.allow("ListParts")?;
        self.fs.list_parts(req).await
    }
}

pub struct TestS3 {
    /// The s3s-fs root; for another server, only a scratch folder.
    pub root: tempfile::TempDir,
    pub addr: SocketAddr,
    pub bucket: String,
    pub switches: Arc<Switches>,
    runtime: tokio::runtime::Runtime,
    stop: std::sync::Mutex<CancellationToken>,
    /// Another implementation, reached at this endpoint (moto in `.ci/run`).
    external: Option<String>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

impl TestS3 {
    /// A server with the bucket `BUCKET` created.
    pub fn start() -> TestS3 {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(root.path().join(BUCKET)).expect("bucket folder");
        let runtime = runtime();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind loopback");
        let addr = listener.local_addr().expect("address");
        let server = TestS3 {
            root,
            addr,
            bucket: BUCKET.to_string(),
            switches: Arc::new(Switches::default()),
            runtime,
            stop: std::sync::Mutex::new(CancellationToken::new()),
            external: None,
        };
        server.serve(listener);
        server
    }

    /// Another S3 implementation already running at `endpoint`, with a new bucket of its own.
    pub fn external(endpoint: &str) -> TestS3 {
        let addr = url::Url::parse(endpoint)
            .ok()
            .and_then(|u| u.socket_addrs(|| None).ok())
            .and_then(|a| a.first().copied())
            .expect("endpoint like http://127.0.0.1:5000");
        let server = TestS3 {
            root: tempfile::tempdir().expect("temp dir"),
            addr,
            bucket: format!(
                "scopetrail-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
            switches: Arc::new(Switches::default()),
            runtime: runtime(),
            stop: std::sync::Mutex::new(CancellationToken::new()),
            external: Some(endpoint.trim_end_matches('/').to_string()),
        };
        let client = server.client();
        server
            .block_on(client.create_bucket().bucket(&server.bucket).send())
            .expect("create the test bucket");
        server
    }

    pub fn is_external(&self) -> bool {
        self.external.is_some()
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let fs = FileSystem::new(self.root.path()).expect("s3s-fs root");
        let gate = Gate {
            fs: Arc::new(fs),
            switches: self.switches.clone(),
            writes: Arc::new(Mutex::new(())),
        };
        let mut builder = s3s::service::S3ServiceBuilder::new(gate);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let stop = self.stop.lock().expect("lock").clone();
        self.runtime.spawn(async move {
            let http =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            loop {
                let socket = tokio::select! {
                    () = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(_) => continue,
                    },
                };
                let conn = http
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                    .into_owned();
                let stop = stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = stop.cancelled() => {}
                        _ = conn => {}
                    }
                });
            }
        });
    }

    /// Stops answering: the port refuses connections and open ones are dropped.
    pub fn stop(&self) {
        self.stop.lock().expect("lock").cancel();
        // Let the accept loop drop the listener.
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    /// Serves again on the same port.
    pub fn restart(&self) {
        *self.stop.lock().expect("lock") = CancellationToken::new();
        let listener = self.runtime.block_on(async {
            for _ in 0..50 {
                if let Ok(l) = tokio::net::TcpListener::bind(self.addr).await {
                    return l;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("could not bind {} again", self.addr)
        });
        self.serve(listener);
    }

    pub fn endpoint(&self) -> String {
        match &self.external {
            Some(e) => e.clone(),
            None => format!("http://{}", self.addr),
        }
    }

    /// Where the objects under `prefix` are on disk (s3s-fs keeps a key as a path).
    pub fn folder(&self, prefix: &str) -> PathBuf {
        assert!(self.external.is_none(), "no folder behind another server");
        self.root.path().join(BUCKET).join(prefix)
    }

    /// The objects under `prefix` as files: s3s-fs's own folder, or a download of them from
    /// another server (so the tests read both the same way).
    pub fn snapshot(&self, prefix: &str) -> Snapshot {
        if self.external.is_none() {
            return Snapshot::Folder(self.folder(prefix));
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let client = self.client();
        self.block_on(async {
            let mut pages = client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(format!("{prefix}/"))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                for object in page.expect("list").contents() {
                    let key = object.key().expect("key");
                    let got = client
                        .get_object()
                        .bucket(&self.bucket)
                        .key(key)
                        .send()
                        .await
                        .expect("get");
                    let bytes = got.body.collect().await.expect("body").to_vec();
                    let path = dir.path().join(&key[prefix.len() + 1..]);
                    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                    std::fs::write(path, bytes).expect("write");
                }
            }
        });
        Snapshot::Copy(dir)
    }

    /// Multipart uploads that were started and neither completed nor aborted.
    pub fn open_uploads(&self) -> usize {
        if self.external.is_some() {
            let client = self.client();
            let listed = self
                .block_on(client.list_multipart_uploads().bucket(&self.bucket).send())
                .expect("list uploads");
            return listed.uploads().len();
        }
        std::fs::read_dir(self.root.path())
            .expect("root")
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.starts_with(".upload-") && name.ends_with(".json")
            })
            .count()
    }

    /// The environment the scopetrail binary needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        // No shared config or credentials from the developer's machine.
        let empty = self.root.path().join(".empty-aws-config");
        if !empty.exists() {
            std::fs::write(&empty, "").expect("empty AWS config");
        }
        let empty = empty.to_string_lossy().to_string();
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_CONFIG_FILE", empty.clone()),
            ("AWS_SHARED_CREDENTIALS_FILE", empty),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
    }

    /// An SDK client for reading back what was written (metadata, ETags).
    pub fn client(&self) -> aws_sdk_s3::Client {
        let creds =
            aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test");
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .credentials_provider(creds)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

pub enum Snapshot {
    Folder(PathBuf),
    Copy(tempfile::TempDir),
}

impl std::ops::Deref for Snapshot {
    type Target = Path;
    fn deref(&self) -> &Path {
        match self {
            Snapshot::Folder(p) => p,
            Snapshot::Copy(d) => d.path(),
        }
    }
}

/// The `[store]` table for this server.
pub fn store_table(server: &TestS3, prefix: &str, extra: &str) -> String {
    format!(
        "[store]\nkind = \"s3\"\nbucket = \"{}\"\nprefix = \"{prefix}\"\nendpoint = \"{}\"\nmax_attempts = 3\n{extra}\n",
        server.bucket,
        server.endpoint()
    )
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect()
}
