//! Large objects go up in parts straight from their temporary file (never whole in memory),
//! a few parts at a time, and are created only on completion (`If-None-Match: *` on
//! CompleteMultipartUpload). Each upload in progress is noted under `_state/uploads/`, so one
//! that a crash interrupted is aborted by a later run (`abort_stale`), also on servers that
//! cannot list multipart uploads.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::errors::{self, Op};
use super::{ChecksumMode, Condition, PutFailure, S3Store, again, content_type, to_map};
use crate::store::keys::{UPLOADS_PREFIX, upload_key};
use crate::store::{Metadata, ObjectStore};

/// Parts in flight at once: enough to keep a link busy, few enough to stay small.
const PARTS_IN_FLIGHT: usize = 8;

/// Bodies are read from the file in chunks of this size (the SDK's default, 4 KiB, makes
/// many small writes and checksum frames).
pub(super) const READ_BUFFER: usize = 256 * 1024;

#[derive(Serialize, Deserialize)]
struct Note {
    /// The full key (prefix included).
    key: String,
    upload_id: String,
    started_ms: i64,
}

pub(super) async fn multipart(
    store: &S3Store,
    key: &str,
    path: &Path,
    size: u64,
    metadata: &Metadata,
) -> Result<(), PutFailure> {
    let full = store.full_key(key);
    let checksums = store.spec.checksum == ChecksumMode::WhenSupported;
    let created = again(|| {
        let mut req = store
            .client
            .create_multipart_upload()
            .bucket(&store.spec.bucket)
            .key(&full)
            .content_type(content_type(key))
            .set_metadata(Some(to_map(metadata)))
            .set_server_side_encryption(store.sse())
            .set_ssekms_key_id(store.spec.kms_key_id.clone())
            .set_storage_class(store.storage_class(key))
            .set_tagging(store.tagging());
        if checksums {
            req = req.checksum_algorithm(ChecksumAlgorithm::Crc32);
        }
        req.send()
    })
    .await
    .map_err(|e| store.fail(Op::CreateUpload, key, e))?;
    let upload_id = created
        .upload_id()
        .context("CreateMultipartUpload answered without an upload id")?
        .to_string();

    let note_key = upload_key(&uuid::Uuid::new_v4().simple().to_string());
    let note = Note {
        key: full.clone(),
        upload_id: upload_id.clone(),
        started_ms: chrono::Utc::now().timestamp_millis(),
    };
    let noted = store
        .put_bytes(
            &note_key,
            &serde_json::to_vec(&note).map_err(anyhow::Error::from)?,
            &Metadata::new(),
            Condition::Any,
        )
        .await;
    let result = match noted {
        Ok(_) => upload_parts(store, key, &upload_id, path, size, checksums).await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        // Best effort: what is left is aborted by a later run through the note.
        if let Err(e) = abort(store, &full, &upload_id).await {
            tracing::warn!(key, error = %format!("{e:#}"), "could not abort a multipart upload");
            return result;
        }
    }
    if let Err(e) = store.delete(&note_key).await {
        tracing::warn!(key = %note_key, error = %format!("{e:#}"), "could not delete an upload note");
    }
    result
}

async fn upload_parts(
    store: &S3Store,
    key: &str,
    upload_id: &str,
    path: &Path,
    size: u64,
    checksums: bool,
) -> Result<(), PutFailure> {
    let full = store.full_key(key);
    let part_size = store.spec.part_size;
    let count = size.div_ceil(part_size);
    let parts: Vec<CompletedPart> = futures_util::stream::iter(0..count)
        .map(|i| {
            let full = &full;
            async move {
                let offset = i * part_size;
                let length = part_size.min(size - offset);
                let number = i32::try_from(i + 1).context("too many parts")?;
                let sent = again(|| async {
                    let body = ByteStream::read_from()
                        .path(path)
                        .buffer_size(READ_BUFFER)
                        .offset(offset)
                        .length(Length::Exact(length))
                        .build()
                        .await
                        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                    let mut req = store
                        .client
                        .upload_part()
                        .bucket(&store.spec.bucket)
                        .key(full)
                        .upload_id(upload_id)
                        .part_number(number)
                        .body(body);
                    if checksums {
                        req = req.checksum_algorithm(ChecksumAlgorithm::Crc32);
                    }
                    Ok::<_, anyhow::Error>(req.send().await)
                })
                .await;
                let out = match sent {
                    Ok(Ok(out)) => out,
                    Ok(Err(e)) => return Err(store.fail(Op::UploadPart, key, e)),
                    Err(e) => return Err(e),
                };
                Ok::<_, anyhow::Error>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(String::from))
                        .set_checksum_crc32(out.checksum_crc32().map(String::from))
                        .build(),
                )
            }
        })
        .buffered(PARTS_IN_FLIGHT)
        .try_collect()
        .await?;

    let completed = again(|| {
        let req = store
            .client
            .complete_multipart_upload()
            .bucket(&store.spec.bucket)
            .key(&full)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts.clone()))
                    .build(),
            );
        if store.conditional {
            req.if_none_match("*").send()
        } else {
            req.send()
        }
    })
    .await;
    match completed {
        Ok(_) => Ok(()),
        Err(e) if errors::is_precondition_failed(&e) => Err(PutFailure::Taken),
        Err(e) => Err(PutFailure::Failed(store.fail(Op::CompleteUpload, key, e))),
    }
}

async fn abort(store: &S3Store, full_key: &str, upload_id: &str) -> Result<()> {
    let sent = store
        .client
        .abort_multipart_upload()
        .bucket(&store.spec.bucket)
        .key(full_key)
        .upload_id(upload_id)
        .send()
        .await;
    match sent {
        Ok(_) => Ok(()),
        // Already completed or aborted.
        Err(e) if errors::is_not_found(&e) => Ok(()),
        Err(e) => Err(store.fail(Op::AbortUpload, full_key, e)),
    }
}

/// Aborts the uploads started before `before` that no run finished: those noted under
/// `_state/uploads/`, and those the server lists (where it can).
pub(super) async fn abort_stale(store: &S3Store, before: SystemTime) -> Result<usize> {
    let before_ms = before
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64;
    let mut aborted = 0;
    for note_key in store.list(UPLOADS_PREFIX).await? {
        let Some((bytes, _)) = store.get(&note_key).await? else {
            continue;
        };
        match serde_json::from_slice::<Note>(&bytes) {
            Ok(note) if note.started_ms >= before_ms => continue,
            Ok(note) => {
                abort(store, &note.key, &note.upload_id).await?;
                aborted += 1;
            }
            Err(_) => {}
        }
        store.delete(&note_key).await?;
    }

    // Uploads the server lists (it may not: s3s-fs, some S3-compatible stores), a page at a time.
    let (mut key_marker, mut id_marker) = (None, None);
    loop {
        let page = store
            .client
            .list_multipart_uploads()
            .bucket(&store.spec.bucket)
            .prefix(&store.spec.prefix)
            .set_key_marker(key_marker.take())
            .set_upload_id_marker(id_marker.take())
            .send()
            .await;
        let page = match page {
            Ok(p) => p,
            Err(e) if errors::is_not_implemented(&e) => {
                tracing::debug!(
                    "the server cannot list multipart uploads; only noted ones were checked"
                );
                break;
            }
            Err(e) => return Err(store.fail(Op::ListUploads, &store.spec.prefix, e)),
        };
        for upload in page.uploads() {
            let started = upload
                .initiated()
                .and_then(|t| SystemTime::try_from(*t).ok());
            if let (Some(key), Some(id), Some(started)) =
                (upload.key(), upload.upload_id(), started)
                && started < before
            {
                abort(store, key, id).await?;
                aborted += 1;
            }
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(String::from);
        id_marker = page.next_upload_id_marker().map(String::from);
        if key_marker.is_none() {
            break;
        }
    }
    Ok(aborted)
}
