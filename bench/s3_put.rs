//! Uploads files through scopetrail's S3 store exactly as an export does (create-only, from
//! the file, in parts above `part_size_mib`), one after another. For `bench/s3_upload.sh`.
//!
//!   s3_put <endpoint> <bucket> <prefix> <file>...
//!
//! Credentials come from the standard AWS chain (the script sets AWS_ACCESS_KEY_ID...).

use scopetrail::store::s3::{ChecksumMode, S3Spec, S3Store};
use scopetrail::store::{Body, Metadata, ObjectStore, PutOutcome};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, bucket, prefix, files @ ..] = args.as_slice() else {
        anyhow::bail!("usage: s3_put <endpoint> <bucket> <prefix> <file>...");
    };
    let part_mib: u64 = std::env::var("PART_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let spec = S3Spec {
        bucket: bucket.clone(),
        prefix: format!("{}/", prefix.trim_matches('/')),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint.clone()),
        path_style: true,
        // CHECKSUM=when_required: no CRC32 on uploads, like awscli before 2.23.
        checksum: match std::env::var("CHECKSUM").as_deref() {
            Ok("when_required") => ChecksumMode::WhenRequired,
            _ => ChecksumMode::WhenSupported,
        },
        sse: None,
        kms_key_id: None,
        storage_class: None,
        tags: Default::default(),
        single_writer: false,
        profile: None,
        max_attempts: 3,
        part_size: part_mib * 1024 * 1024,
    };
    let store = S3Store::connect(&spec).await?;
    for file in files {
        let path = std::path::PathBuf::from(file);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow::anyhow!("{file}: no file name"))?;
        let metadata = Metadata::from([("sha256".to_string(), "0".repeat(64))]);
        match store
            .put_new(
                &format!("v1/bench/{name}"),
                Body::File(path.clone()),
                &metadata,
            )
            .await?
        {
            PutOutcome::Created => {}
            PutOutcome::AlreadyExists(_) => anyhow::bail!("{name} was already there"),
        }
    }
    Ok(())
}
