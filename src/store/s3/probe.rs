//! Does this server honour conditional writes? Garage 2.5, for one, overwrites on
//! `If-None-Match: *` and `If-Match`. The answer is asked of a scratch object under
//! `_state/store/` on a bucket's first use and recorded beside it; `validate --connect` asks
//! again and also proves the bucket reachable and writable.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::errors::{self, Op};
use super::{Condition, S3Spec, S3Store};
use crate::store::keys::{CONDITIONAL_WRITES_KEY, probe_key};
use crate::store::{Metadata, ObjectStore};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub if_none_match: bool,
    pub if_match: bool,
    pub probed_at: String,
    pub probed_by: String,
}

impl Answer {
    pub fn conditional(&self) -> bool {
        self.if_none_match && self.if_match
    }

    pub fn describe(&self) -> String {
        let word = |ok: bool| if ok { "honoured" } else { "IGNORED" };
        format!(
            "If-None-Match {}, If-Match {}",
            word(self.if_none_match),
            word(self.if_match)
        )
    }
}

/// The recorded answer, or a new one (recorded).
pub async fn recorded_or_probe(store: &S3Store) -> Result<Answer> {
    if let Some((bytes, _)) = store.get(CONDITIONAL_WRITES_KEY).await?
        && let Ok(answer) = serde_json::from_slice::<Answer>(&bytes)
    {
        return Ok(answer);
    }
    let answer = probe(store).await?;
    record(store, &answer).await?;
    tracing::info!(store = %store.url, "probed conditional writes: {}", answer.describe());
    Ok(answer)
}

async fn record(store: &S3Store, answer: &Answer) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(answer)?;
    store
        .put_bytes(
            CONDITIONAL_WRITES_KEY,
            &bytes,
            &Metadata::new(),
            Condition::Any,
        )
        .await
        .map_err(|e| match e {
            super::PutFailure::Failed(e) => e,
            super::PutFailure::Taken => anyhow::anyhow!("recording the probe was refused"),
        })?;
    Ok(())
}

/// Writes a scratch object three times: plainly, with `If-None-Match: *` (must be refused:
/// it exists), with `If-Match` on an ETag it cannot have (must be refused); then deletes it.
pub async fn probe(store: &S3Store) -> Result<Answer> {
    let key = probe_key(&uuid::Uuid::new_v4().simple().to_string());
    let full = store.full_key(&key);
    let put = |body: &'static [u8]| {
        store
            .client
            .put_object()
            .bucket(&store.spec.bucket)
            .key(&full)
            .body(body.to_vec().into())
    };
    put(b"scopetrail probe 1")
        .send()
        .await
        .map_err(|e| store.fail(Op::Put, &key, e))?;
    let refused = |sent: Result<_, _>| -> Result<bool> {
        match sent {
            Ok(_) => Ok(false),
            Err(e) if errors::is_precondition_failed(&e) => Ok(true),
            // Servers that do not implement a header may say so instead of ignoring it.
            Err(e) if errors::is_not_implemented(&e) || errors::status(&e) == Some(400) => {
                Ok(false)
            }
            Err(e) => Err(store.fail(Op::Put, &key, e)),
        }
    };
    let if_none_match = refused(put(b"scopetrail probe 2").if_none_match("*").send().await)?;
    let if_match = refused(
        put(b"scopetrail probe 3")
            .if_match("\"00000000000000000000000000000000\"")
            .send()
            .await,
    )?;
    store.delete(&key).await?;
    Ok(Answer {
        if_none_match,
        if_match,
        probed_at: crate::model::rfc3339_ms(chrono::Utc::now().timestamp_millis()),
        probed_by: format!("scopetrail {}", env!("CARGO_PKG_VERSION")),
    })
}

/// What `validate --connect` found, line by line; an error names what is missing.
pub async fn check(spec: &S3Spec) -> Result<Vec<String>> {
    let mut store = S3Store::unprobed(spec).await?;
    let mut lines = vec![format!("store {}", spec.describe())];

    let listed = store
        .client
        .list_objects_v2()
        .bucket(&spec.bucket)
        .prefix(&spec.prefix)
        .max_keys(1)
        .send()
        .await
        .map_err(|e| store.fail(Op::List, &spec.prefix, e))?;
    lines.push(format!(
        "  reachable: listed the prefix ({})",
        if listed.key_count().unwrap_or(0) > 0 {
            "not empty"
        } else {
            "empty"
        }
    ));

    let answer = probe(&store).await?;
    record(&store, &answer).await?;
    store.conditional = answer.conditional();
    lines.push("  writable: _state/ (wrote, read and deleted a probe object)".to_string());
    lines.push(format!(
        "  conditional writes: {} (recorded in {CONDITIONAL_WRITES_KEY})",
        answer.describe()
    ));
    if !answer.conditional() {
        lines.push(if spec.single_writer {
            "  single writer: on; runs take a host-local lock instead of store leases".into()
        } else {
            "  single writer: OFF; `run` refuses this store until `single_writer = true` is set (and only one process writes)".into()
        });
    }

    // Exported objects are never deleted, so the permission to write them is proved with a
    // request that S3 checks for permission first and then refuses on its condition: nothing
    // is written. Only possible where conditions are honoured.
    if answer.if_match {
        let key = "v1/_scopetrail-write-check";
        let sent = store
            .client
            .put_object()
            .bucket(&spec.bucket)
            .key(store.full_key(key))
            .if_match("\"00000000000000000000000000000000\"")
            .body(Vec::new().into())
            .send()
            .await;
        match sent {
            Err(e) if errors::is_precondition_failed(&e) || errors::is_not_found(&e) => {
                lines.push("  writable: v1/ (checked without writing)".to_string());
            }
            Ok(_) => {
                lines.push(
                    "  writable: v1/ (the check object was written: the server ignored If-Match)"
                        .to_string(),
                );
            }
            Err(e) => return Err(store.fail(Op::Put, key, e)),
        }
    } else {
        lines.push(
            "  v1/: not checked (it cannot be done without writing where nothing is deleted)"
                .to_string(),
        );
    }
    Ok(lines)
}
