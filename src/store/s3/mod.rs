//! The S3 backend (DESIGN §5): the same layout as the local folder, in a bucket under a prefix,
//! through aws-sdk-s3 and the standard AWS credential chain.
//!
//! Create-only uploads send `If-None-Match: *`; conditional replaces (checkpoints, leases)
//! send `If-Match` with the ETag that was read. Some S3-compatible servers ignore both: the
//! first use of a bucket probes them (`probe`) and records the answer under
//! `_state/store/`; on such a server the store only runs as the single writer
//! (`store.single_writer = true`), looks before it writes, and the run takes a host-local lock
//! instead of trusting store leases.

pub mod config;
mod errors;
pub mod probe;
mod upload;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ServerSideEncryption, StorageClass};

pub use config::{ChecksumMode, S3Spec, Sse};
use errors::{Op, Target};

use super::{
    Body, LocalCopy, Metadata, ObjectInfo, ObjectStore, PutOutcome, ReplaceOutcome, Version,
    check_key,
};
use crate::error::ConfigError;

pub struct S3Store {
    client: Client,
    spec: S3Spec,
    url: String,
    /// The server honours `If-None-Match` and `If-Match` (see `probe`).
    conditional: bool,
}

/// Why a create-only upload did not create.
enum PutFailure {
    /// The key is taken.
    Taken,
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for PutFailure {
    fn from(e: anyhow::Error) -> Self {
        PutFailure::Failed(e)
    }
}

impl S3Store {
    /// Connects, and on first use of the bucket probes whether it honours conditional writes.
    pub async fn connect(spec: &S3Spec) -> Result<S3Store> {
        let mut store = S3Store::unprobed(spec).await?;
        let answer = probe::recorded_or_probe(&store).await?;
        store.conditional = answer.conditional();
        if !store.conditional && !spec.single_writer {
            return Err(ConfigError(format!(
                "{}: the store ignores conditional writes ({}), so two scopetrail processes could overwrite each other's work; run one writer only and set `single_writer = true` in the store table",
                store.url,
                answer.describe()
            ))
            .into());
        }
        Ok(store)
    }

    /// A client for the spec, trusting conditional writes until the probe says otherwise.
    async fn unprobed(spec: &S3Spec) -> Result<S3Store> {
        Ok(S3Store {
            client: client(spec).await?,
            spec: spec.clone(),
            url: spec.url(),
            conditional: true,
        })
    }

    pub fn conditional(&self) -> bool {
        self.conditional
    }

    fn target(&self) -> Target<'_> {
        Target {
            bucket: &self.spec.bucket,
            prefix: &self.spec.prefix,
            url: &self.url,
        }
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.spec.prefix)
    }

    fn fail<E>(&self, op: Op, key: &str, err: SdkError<E, HttpResponse>) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        errors::describe(&self.target(), op, key, err)
    }

    /// A PUT with what every object gets: type, metadata, encryption, class and tags.
    fn put_request(&self, key: &str, metadata: &Metadata) -> PutObjectFluentBuilder {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.spec.bucket)
            .key(self.full_key(key))
            .content_type(content_type(key))
            .set_metadata(Some(to_map(metadata)));
        if let Some(sse) = self.sse() {
            req = req.server_side_encryption(sse);
        }
        req = req.set_ssekms_key_id(self.spec.kms_key_id.clone());
        req = req.set_storage_class(self.storage_class(key));
        req.set_tagging(self.tagging())
    }

    fn sse(&self) -> Option<ServerSideEncryption> {
        self.spec.sse.as_ref().map(|s| match s {
            Sse::S3 => ServerSideEncryption::Aes256,
            Sse::Kms => ServerSideEncryption::AwsKms,
        })
    }

    /// State objects are rewritten often: infrequent-access classes would bill them for a
    /// minimum duration each time, so they stay STANDARD.
    fn storage_class(&self, key: &str) -> Option<StorageClass> {
        if key.starts_with(super::keys::STATE_ROOT) {
            return None;
        }
        self.spec.storage_class.as_deref().map(StorageClass::from)
    }

    fn tagging(&self) -> Option<String> {
        (!self.spec.tags.is_empty()).then(|| {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&self.spec.tags)
                .finish()
        })
    }

    async fn put_bytes(
        &self,
        key: &str,
        bytes: &[u8],
        metadata: &Metadata,
        condition: Condition<'_>,
    ) -> Result<Option<Version>, PutFailure> {
        let sent = again(|| {
            let req = self
                .put_request(key, metadata)
                .body(ByteStream::from(bytes.to_vec()));
            condition.apply(req, self.conditional).send()
        })
        .await;
        match sent {
            Ok(out) => Ok(out.e_tag().map(|e| Version(e.to_string()))),
            Err(e) if errors::is_precondition_failed(&e) => Err(PutFailure::Taken),
            Err(e) => Err(PutFailure::Failed(self.fail(Op::Put, key, e))),
        }
    }

    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        metadata: &Metadata,
    ) -> Result<(), PutFailure> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        if size > self.spec.part_size {
            return upload::multipart(self, key, path, size, metadata).await;
        }
        let sent = again(|| async {
            let body = ByteStream::read_from()
                .path(path)
                .buffer_size(upload::READ_BUFFER)
                .build()
                .await
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            let req = self.put_request(key, metadata).body(body);
            Ok::<_, anyhow::Error>(Condition::Absent.apply(req, self.conditional).send().await)
        })
        .await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if errors::is_precondition_failed(&e) => Err(PutFailure::Taken),
            Ok(Err(e)) => Err(PutFailure::Failed(self.fail(Op::Put, key, e))),
            Err(e) => Err(PutFailure::Failed(e)),
        }
    }

    /// The object's ETag, if it exists.
    async fn etag(&self, key: &str) -> Result<Option<Version>> {
        match self.head_raw(key).await? {
            None => Ok(None),
            Some(out) => Ok(out.e_tag().map(|e| Version(e.to_string()))),
        }
    }

    async fn head_raw(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::head_object::HeadObjectOutput>> {
        let sent = again(|| {
            self.client
                .head_object()
                .bucket(&self.spec.bucket)
                .key(self.full_key(key))
                .send()
        })
        .await;
        match sent {
            Ok(out) => Ok(Some(out)),
            Err(e) if errors::is_not_found(&e) => Ok(None),
            Err(e) => Err(self.fail(Op::Head, key, e)),
        }
    }

    /// The object's body as a stream, if it exists.
    async fn get_raw(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>> {
        check_key(key)?;
        let sent = again(|| {
            self.client
                .get_object()
                .bucket(&self.spec.bucket)
                .key(self.full_key(key))
                .send()
        })
        .await;
        match sent {
            Ok(out) => Ok(Some(out)),
            Err(e) if errors::is_not_found(&e) => Ok(None),
            Err(e) => Err(self.fail(Op::Get, key, e)),
        }
    }

    /// Lists full keys (prefix included) under a full prefix.
    async fn list_full(&self, full_prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.spec.bucket)
            .prefix(full_prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.fail(Op::List, full_prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
        }
        keys.sort();
        Ok(keys)
    }
}

/// What a PUT requires of the key.
#[derive(Clone, Copy)]
enum Condition<'a> {
    Absent,
    At(&'a Version),
    Any,
}

impl Condition<'_> {
    fn apply(self, req: PutObjectFluentBuilder, conditional: bool) -> PutObjectFluentBuilder {
        // On a server that ignores conditions they are checked before the request instead;
        // sending them anyway could meet a server that rejects what it does not implement.
        if !conditional {
            return req;
        }
        match self {
            Condition::Absent => req.if_none_match("*"),
            Condition::At(v) => req.if_match(&v.0),
            Condition::Any => req,
        }
    }
}

/// Runs a request again when the credentials expired under it: the SDK's credential cache
/// loads fresh ones for the next attempt. Other retries (5xx, SlowDown, timeouts) are the
/// SDK's own, with backoff (`max_attempts`).
async fn again<T, F, Fut>(mut request: F) -> T
where
    T: Outcome,
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let mut tries = 0;
    loop {
        let outcome = request().await;
        if !outcome.credentials_expired() || tries == 2 {
            return outcome;
        }
        tries += 1;
        tracing::info!("S3 says the credentials expired; trying again with fresh ones");
        tokio::time::sleep(Duration::from_secs(tries)).await;
    }
}

/// The result of a request, as `again` needs to see it.
trait Outcome {
    fn credentials_expired(&self) -> bool;
}

impl<O, E: ProvideErrorMetadata> Outcome for Result<O, SdkError<E, HttpResponse>> {
    fn credentials_expired(&self) -> bool {
        self.as_ref()
            .err()
            .is_some_and(errors::is_expired_credentials)
    }
}

/// A request whose body had to be prepared first (read from a file), which can fail alone.
impl<O, E: ProvideErrorMetadata> Outcome for Result<Result<O, SdkError<E, HttpResponse>>> {
    fn credentials_expired(&self) -> bool {
        self.as_ref().is_ok_and(Outcome::credentials_expired)
    }
}

/// The SDK client for a spec: the standard credential chain (environment, shared profile
/// with SSO and `credential_process`, web identity, ECS, IMDSv2), the region from the
/// configuration or the chain, and the store's endpoint, addressing and checksum mode.
pub async fn client(spec: &S3Spec) -> Result<Client> {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};

    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(spec.max_attempts)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(20)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .build(),
        );
    if let Some(profile) = &spec.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &spec.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let shared = loader.load().await;
    let mut builder = aws_sdk_s3::config::Builder::from(&shared).force_path_style(spec.path_style);
    if shared.region().is_none() {
        if spec.endpoint.is_none() {
            return Err(ConfigError(format!(
                "{}: no region: set `region` in the store table, or AWS_REGION",
                spec.url()
            ))
            .into());
        }
        builder = builder.region(Region::new(config::FALLBACK_REGION));
    }
    if let Some(endpoint) = &spec.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    if spec.checksum == ChecksumMode::WhenRequired {
        builder = builder
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    }
    Ok(Client::from_conf(builder.build()))
}

fn to_map(metadata: &Metadata) -> HashMap<String, String> {
    metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn content_type(key: &str) -> &'static str {
    if key.ends_with(".gz") {
        "application/gzip"
    } else if key.ends_with(".json") {
        "application/json"
    } else if key.ends_with(".html") {
        "text/html; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn location(&self) -> String {
        self.url.clone()
    }

    fn single_writer(&self) -> bool {
        !self.conditional
    }

    async fn put_new(&self, key: &str, body: Body, metadata: &Metadata) -> Result<PutOutcome> {
        check_key(key)?;
        if !self.conditional
            && let Some(info) = self.head(key).await?
        {
            return Ok(PutOutcome::AlreadyExists(info));
        }
        let put = match &body {
            Body::Bytes(bytes) => self
                .put_bytes(key, bytes, metadata, Condition::Absent)
                .await
                .map(|_| ()),
            Body::File(path) => self.put_file(key, path, metadata).await,
        };
        match put {
            Ok(()) => Ok(PutOutcome::Created),
            Err(PutFailure::Failed(e)) => Err(e),
            Err(PutFailure::Taken) => match self.head(key).await? {
                Some(info) => Ok(PutOutcome::AlreadyExists(info)),
                None => Err(anyhow::anyhow!(
                    "{}: {key} was refused as taken, yet is not there (deleted in between?)",
                    self.url
                )),
            },
        }
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        check_key(key)?;
        Ok(self.head_raw(key).await?.map(|out| ObjectInfo {
            size: out
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            metadata: out
                .metadata()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        }))
    }

    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>> {
        let Some(out) = self.get_raw(key).await? else {
            return Ok(None);
        };
        let version = Version(out.e_tag().unwrap_or_default().to_string());
        let bytes = out.body.collect().await.map_err(|e| {
            crate::error::Temporary(format!(
                "{}: GetObject {key}: reading the body: {e}",
                self.url
            ))
        })?;
        Ok(Some((bytes.to_vec(), version)))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let strip = self.spec.prefix.len();
        Ok(self
            .list_full(&self.full_key(prefix))
            .await?
            .into_iter()
            .filter_map(|k| k.get(strip..).map(String::from))
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        again(|| {
            self.client
                .delete_object()
                .bucket(&self.spec.bucket)
                .key(self.full_key(key))
                .send()
        })
        .await
        .map_err(|e| self.fail(Op::Delete, key, e))?;
        Ok(())
    }

    async fn replace(
        &self,
        key: &str,
        body: Vec<u8>,
        expected: Option<&Version>,
    ) -> Result<ReplaceOutcome> {
        check_key(key)?;
        if !self.conditional {
            // Checked here instead of by the server; safe only because this process is the
            // single writer (the run holds the host lock).
            if self.etag(key).await?.as_ref() != expected {
                return Ok(ReplaceOutcome::Conflict);
            }
        }
        let condition = match expected {
            None => Condition::Absent,
            Some(v) => Condition::At(v),
        };
        match self
            .put_bytes(key, &body, &Metadata::new(), condition)
            .await
        {
            Ok(Some(version)) => Ok(ReplaceOutcome::Replaced(version)),
            Ok(None) => match self.etag(key).await? {
                Some(version) => Ok(ReplaceOutcome::Replaced(version)),
                None => Err(anyhow::anyhow!("{}: {key} written but not found", self.url)),
            },
            Err(PutFailure::Failed(e)) => Err(e),
            // A retried request whose first attempt got through is refused by its own write:
            // what is there now tells.
            Err(PutFailure::Taken) => match self.get(key).await? {
                Some((bytes, version)) if bytes == body => Ok(ReplaceOutcome::Replaced(version)),
                _ => Ok(ReplaceOutcome::Conflict),
            },
        }
    }

    async fn fetch_to_file(&self, key: &str, scratch: &Path) -> Result<Option<LocalCopy>> {
        let Some(out) = self.get_raw(key).await? else {
            return Ok(None);
        };
        let path = tempfile::Builder::new()
            .prefix("fetched-")
            .tempfile_in(scratch)
            .with_context(|| format!("creating a file in {}", scratch.display()))?
            .into_temp_path();
        let mut file = tokio::fs::File::create(&path)
            .await
            .with_context(|| format!("writing {}", path.display()))?;
        let mut body = out.body.into_async_read();
        tokio::io::copy(&mut body, &mut file).await.map_err(|e| {
            crate::error::Temporary(format!(
                "{}: GetObject {key}: reading the body: {e}",
                self.url
            ))
        })?;
        Ok(Some(LocalCopy::Downloaded(path)))
    }

    async fn clean_leftovers(&self, before: SystemTime) -> Result<usize> {
        upload::abort_stale(self, before).await
    }
}
