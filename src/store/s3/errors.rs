//! S3 failures as one line a person can act on: which request, on which key, what S3 said, and
//! for a denial the permission to grant. Failures a later run can get past (5xx, SlowDown,
//! timeouts, expired credentials, an unreachable endpoint) are `Temporary`, so the run exits
//! 75 and leaves staged data and checkpoints for the next one.

use std::error::Error as StdError;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::error::{ConfigError, Temporary};

/// The S3 requests the store makes, for messages and permission names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put,
    Get,
    Head,
    List,
    Delete,
    CreateUpload,
    UploadPart,
    CompleteUpload,
    AbortUpload,
    ListUploads,
}

impl Op {
    fn request(self) -> &'static str {
        match self {
            Op::Put => "PutObject",
            Op::Get => "GetObject",
            Op::Head => "HeadObject",
            Op::List => "ListObjectsV2",
            Op::Delete => "DeleteObject",
            Op::CreateUpload => "CreateMultipartUpload",
            Op::UploadPart => "UploadPart",
            Op::CompleteUpload => "CompleteMultipartUpload",
            Op::AbortUpload => "AbortMultipartUpload",
            Op::ListUploads => "ListMultipartUploads",
        }
    }

    /// The IAM action a denial of this request asks for, and whether it applies to the bucket
    /// (`arn:aws:s3:::bucket`) rather than to objects (`arn:aws:s3:::bucket/prefix/*`).
    fn permission(self) -> (&'static str, bool) {
        match self {
            Op::Put | Op::CreateUpload | Op::UploadPart | Op::CompleteUpload => {
                ("s3:PutObject", false)
            }
            Op::Get | Op::Head => ("s3:GetObject", false),
            Op::List => ("s3:ListBucket", true),
            Op::Delete => ("s3:DeleteObject", false),
            Op::AbortUpload => ("s3:AbortMultipartUpload", false),
            Op::ListUploads => ("s3:ListBucketMultipartUploads", true),
        }
    }
}

/// Where a request went, for messages.
pub struct Target<'a> {
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub url: &'a str,
}

type Failure<E> = SdkError<E, HttpResponse>;

/// The HTTP status of a failed request, when S3 answered at all.
pub fn status<E>(err: &Failure<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

pub fn code<E: ProvideErrorMetadata>(err: &Failure<E>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// A conditional write that found the object not as required (412), or another conditional
/// write racing it (409 ConditionalRequestConflict).
pub fn is_precondition_failed<E: ProvideErrorMetadata>(err: &Failure<E>) -> bool {
    matches!(status(err), Some(412) | Some(409))
        || matches!(
            code(err),
            Some("PreconditionFailed") | Some("ConditionalRequestConflict")
        )
}

pub fn is_not_found<E: ProvideErrorMetadata>(err: &Failure<E>) -> bool {
    status(err) == Some(404) || matches!(code(err), Some("NoSuchKey") | Some("NotFound"))
}

/// The store does not implement this request (some S3-compatible servers).
pub fn is_not_implemented<E: ProvideErrorMetadata>(err: &Failure<E>) -> bool {
    status(err) == Some(501) || code(err) == Some("NotImplemented")
}

/// Credentials that ran out mid-run: the SDK's cache fetches new ones on the next request.
pub fn is_expired_credentials<E: ProvideErrorMetadata>(err: &Failure<E>) -> bool {
    matches!(
        code(err),
        Some("ExpiredToken") | Some("ExpiredTokenException") | Some("TokenRefreshRequired")
    )
}

fn is_temporary<E: ProvideErrorMetadata + StdError + 'static>(err: &Failure<E>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => {
            status(err).is_some_and(|s| s >= 500 || s == 429 || s == 408)
                || is_expired_credentials(err)
                || matches!(
                    code(err),
                    Some("SlowDown")
                        | Some("Throttling")
                        | Some("RequestTimeout")
                        | Some("RequestTimeTooSkewed")
                )
        }
        // Building the request failed; includes credentials that could not be loaded, which a
        // later run (a refreshed SSO session, a reachable IMDS) may have.
        SdkError::ConstructionFailure(_) => looks_like_credentials(err),
        _ => false,
    }
}

fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn looks_like_credentials<E: StdError + 'static>(err: &Failure<E>) -> bool {
    let text = aws_sdk_s3::error::DisplayErrorContext(err).to_string();
    text.contains("credential") || text.contains("identity")
}

/// One line for a failed request, `Temporary` when a later run can get past it.
pub fn describe<E>(target: &Target<'_>, op: Op, key: &str, err: Failure<E>) -> anyhow::Error
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let what = format!("{}: {} {}", target.url, op.request(), key);
    let http = status(&err)
        .map(|s| format!(" (HTTP {s})"))
        .unwrap_or_default();
    let detail = match &err {
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or("error");
            let message = e.err().message().unwrap_or("");
            if message.is_empty() {
                format!("{code}{http}")
            } else {
                format!("{code}{http}: {message}")
            }
        }
        SdkError::TimeoutError(_) => "timed out".to_string(),
        SdkError::DispatchFailure(e) => match e.as_other() {
            _ if e.is_timeout() => "timed out".to_string(),
            _ => format!("no answer ({})", root_cause(&err)),
        },
        SdkError::ResponseError(_) => format!("unreadable answer{http} ({})", root_cause(&err)),
        SdkError::ConstructionFailure(_) => root_cause(&err),
        _ => root_cause(&err),
    };
    let mut line = format!("{what}: {detail}");
    let needs_someone = status(&err) == Some(403)
        || matches!(
            code(&err),
            Some("AccessDenied")
                | Some("NoSuchBucket")
                | Some("InvalidAccessKeyId")
                | Some("SignatureDoesNotMatch")
        );
    let bad_credentials = matches!(
        code(&err),
        Some("InvalidAccessKeyId") | Some("SignatureDoesNotMatch")
    );
    if bad_credentials {
        line.push_str("; check the credentials the AWS chain found (`aws sts get-caller-identity` shows whose they are)");
    } else if status(&err) == Some(403) || code(&err) == Some("AccessDenied") {
        let (action, on_bucket) = op.permission();
        let resource = if on_bucket {
            format!("arn:aws:s3:::{}", target.bucket)
        } else {
            format!("arn:aws:s3:::{}/{}*", target.bucket, target.prefix)
        };
        line.push_str(&format!("; the credentials need {action} on {resource}"));
        if matches!(op, Op::Head | Op::Get) {
            line.push_str(" (and s3:ListBucket, without which S3 answers 403 for a missing key)");
        }
    } else if code(&err) == Some("NoSuchBucket") {
        line.push_str(&format!(
            "; create the bucket {} or fix `bucket`",
            target.bucket
        ));
    }
    if is_temporary(&err) {
        anyhow::Error::new(Temporary(format!(
            "{line} (the store is unavailable; what was collected stays staged for the next run)"
        )))
    } else if needs_someone {
        // Nothing will work until someone changes the policy, bucket or credentials.
        anyhow::Error::new(ConfigError(line))
    } else {
        anyhow::anyhow!(line)
    }
}
