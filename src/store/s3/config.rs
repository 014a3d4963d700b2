//! `[store] kind = "s3"`: what the configuration says about a bucket, checked before anything
//! connects. Credentials never appear here: they come from the standard AWS chain.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// When the SDK adds checksums to requests and checks them on responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumMode {
    /// The SDK default, right for AWS: a CRC32 on every upload.
    #[default]
    WhenSupported,
    /// Only where the API requires one: for S3-compatible stores whose older releases reject
    /// the SDK's default checksums (MinIO, Ceph, R2 before 2025).
    WhenRequired,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum Sse {
    #[serde(rename = "AES256")]
    S3,
    #[serde(rename = "aws:kms")]
    Kms,
}

#[derive(Debug, Clone)]
pub struct S3Spec {
    pub bucket: String,
    /// Empty, or ending with `/`.
    pub prefix: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub path_style: bool,
    pub checksum: ChecksumMode,
    pub sse: Option<Sse>,
    pub kms_key_id: Option<String>,
    pub storage_class: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// The operator promises that one scopetrail process at a time writes here; needed on
    /// stores that ignore conditional writes.
    pub single_writer: bool,
    pub profile: Option<String>,
    /// Attempts per request, first included, with exponential backoff between them.
    pub max_attempts: u32,
    /// Objects larger than this go up in parts of this size.
    pub part_size: u64,
}

impl S3Spec {
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    pub fn describe(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("{} at {e}", self.url()),
            None => self.url(),
        }
    }
}

/// Used where the SDK needs a region and neither the configuration nor the environment
/// gives one: S3-compatible stores accept any.
pub const FALLBACK_REGION: &str = "us-east-1";

const MIB: u64 = 1024 * 1024;
const DEFAULT_PART_MIB: u64 = 16;
const DEFAULT_ATTEMPTS: u32 = 6;

/// Storage classes a SIEM can read back at once; archive classes need a restore first.
const READABLE_CLASSES: &[&str] = &[
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "REDUCED_REDUNDANCY",
    "EXPRESS_ONEZONE",
];

#[derive(Deserialize)]
pub struct RawS3 {
    #[allow(dead_code)]
    kind: String,
    bucket: Spanned<String>,
    prefix: Option<Spanned<String>>,
    region: Option<String>,
    endpoint: Option<Spanned<String>>,
    path_style: Option<bool>,
    #[serde(default)]
    checksum: ChecksumMode,
    sse: Option<Sse>,
    kms_key_id: Option<Spanned<String>>,
    storage_class: Option<Spanned<String>>,
    tags: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    single_writer: bool,
    profile: Option<String>,
    max_attempts: Option<Spanned<u32>>,
    part_size_mib: Option<Spanned<u64>>,
}

/// Keys people put in a store table that must not be there: the secret would sit in a file.
pub const CREDENTIAL_KEYS: &[&str] = &[
    "access_key",
    "access_key_id",
    "secret_key",
    "secret_access_key",
    "session_token",
    "aws_access_key_id",
    "aws_secret_access_key",
];

/// A problem at a position in the store table.
pub struct Problem {
    pub span: std::ops::Range<usize>,
    pub message: String,
    pub warning: bool,
}

impl RawS3 {
    /// The checked spec, or every problem found; warnings come with a spec.
    pub fn check(self) -> (Option<S3Spec>, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut error = |span: std::ops::Range<usize>, message: String| {
            problems.push(Problem {
                span,
                message,
                warning: false,
            })
        };

        let bucket = self.bucket.get_ref().trim().to_string();
        if bucket.is_empty() || bucket.contains('/') || bucket.contains(char::is_whitespace) {
            error(
                self.bucket.span(),
                format!(
                    "`bucket` must be a bucket name like \"siem-evidence\", not {:?} (put folders in `prefix`)",
                    self.bucket.get_ref()
                ),
            );
        }

        let prefix = match &self.prefix {
            None => String::new(),
            Some(p) => match p.get_ref().trim_matches('/') {
                "" => String::new(),
                trimmed if crate::store::check_key(trimmed).is_err() => {
                    error(
                        p.span(),
                        format!(
                            "`prefix` {:?} has an empty segment or one starting with `.`",
                            p.get_ref()
                        ),
                    );
                    String::new()
                }
                trimmed => format!("{trimmed}/"),
            },
        };

        let mut warnings = Vec::new();
        let endpoint = match &self.endpoint {
            None => None,
            Some(e) => match url::Url::parse(e.get_ref()) {
                Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {
                    let loopback = matches!(
                        u.host(),
                        Some(url::Host::Ipv4(ip)) if ip.is_loopback()
                    ) || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                        || u.host_str() == Some("localhost");
                    if u.scheme() == "http" && !loopback {
                        warnings.push(Problem {
                            span: e.span(),
                            message: "`endpoint` is plain http: exported evidence crosses the network unencrypted (requests are still signed)".into(),
                            warning: true,
                        });
                    }
                    Some(e.get_ref().trim_end_matches('/').to_string())
                }
                _ => {
                    error(
                        e.span(),
                        format!(
                            "`endpoint` must be an http(s) URL like \"https://minio.internal:9000\", not {:?}",
                            e.get_ref()
                        ),
                    );
                    None
                }
            },
        };

        let kms_key_id = match (&self.sse, &self.kms_key_id) {
            (Some(Sse::Kms), k) => k.as_ref().map(|k| k.get_ref().clone()),
            (_, Some(k)) => {
                error(
                    k.span(),
                    "`kms_key_id` needs `sse = \"aws:kms\"`".to_string(),
                );
                None
            }
            (_, None) => None,
        };

        let storage_class = self.storage_class.as_ref().and_then(|c| {
            let class = c.get_ref().to_ascii_uppercase();
            if READABLE_CLASSES.contains(&class.as_str()) {
                Some(class)
            } else {
                error(
                    c.span(),
                    format!(
                        "`storage_class` {:?} is not one a SIEM can read without a restore (use one of: {})",
                        c.get_ref(),
                        READABLE_CLASSES.join(", ")
                    ),
                );
                None
            }
        });

        let tags = self
            .tags
            .as_ref()
            .map(|t| t.get_ref().clone())
            .unwrap_or_default();
        if tags.len() > 10
            || tags
                .iter()
                .any(|(k, v)| k.is_empty() || k.len() > 128 || v.len() > 256)
        {
            error(
                self.tags.as_ref().map(|t| t.span()).unwrap_or_default(),
                "`tags`: S3 allows at most 10 tags, keys of 1-128 characters, values of up to 256"
                    .to_string(),
            );
        }

        let max_attempts = match &self.max_attempts {
            None => DEFAULT_ATTEMPTS,
            Some(n) if (1..=20).contains(n.get_ref()) => *n.get_ref(),
            Some(n) => {
                error(
                    n.span(),
                    "`max_attempts` must be between 1 and 20".to_string(),
                );
                DEFAULT_ATTEMPTS
            }
        };

        let part_size = match &self.part_size_mib {
            None => DEFAULT_PART_MIB * MIB,
            // S3's limits: parts of 5 MiB to 5 GiB.
            Some(n) if (5..=5120).contains(n.get_ref()) => n.get_ref() * MIB,
            Some(n) => {
                error(
                    n.span(),
                    "`part_size_mib` must be between 5 and 5120 (S3's part size limits)"
                        .to_string(),
                );
                DEFAULT_PART_MIB * MIB
            }
        };

        if problems.iter().any(|p| !p.warning) {
            return (None, problems);
        }
        problems.extend(warnings);
        let spec = S3Spec {
            bucket,
            prefix,
            region: self.region.filter(|r| !r.trim().is_empty()),
            // S3-compatible stores are usually reached by path; AWS by virtual host.
            path_style: self.path_style.unwrap_or(endpoint.is_some()),
            endpoint,
            checksum: self.checksum,
            sse: self.sse,
            kms_key_id,
            storage_class,
            tags,
            single_writer: self.single_writer,
            profile: self.profile,
            max_attempts,
            part_size,
        };
        (Some(spec), problems)
    }
}
