//! Attachment blobs: encrypted files too large for an envelope, uploaded in
//! pieces, downloaded in one streamed answer (resumable with `Range`), and
//! deleted when their time to live ends.
//!
//! - `POST /v1/attachments` announces an upload: the id (chosen by the
//!   device, 128 random bits), the size and the time to live (the message's).
//!   The uploader's live bytes are bounded by [`Limits::attachment_quota`]
//!   (507) and each blob by [`Limits::attachment_max`] (413).
//! - `PUT /v1/attachments/{id}?offset=N` appends a piece at `N`, which must
//!   be where the relay stands (409 says where, so an interrupted upload
//!   resumes there). Only the uploader may write. Bytes on disk past the
//!   recorded length (a crash mid-write) are cut before a piece is appended.
//! - `GET /v1/attachments/{id}/status` says where an upload stands.
//! - `GET /v1/attachments/{id}` streams a complete blob from the file,
//!   from `Range: bytes=N-` when asked (206). Any authenticated device that
//!   knows the id may read it: the id is only ever written inside an
//!   end-to-end message, and the blob is ciphertext whose key travels the
//!   same way.
//! - After its expiry the blob answers 410 at once, and the purge deletes
//!   its file; the record stays as a tombstone (still 410) until the
//!   record horizon.
//!
//! The relay never learns the key, the plaintext size or the file name.
//!
//! [`Limits::attachment_quota`]: crate::limits::Limits::attachment_quota
//! [`Limits::attachment_max`]: crate::limits::Limits::attachment_max

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use occ_protocol::api::{AttachmentCreate, AttachmentStatus, MAX_TTL_SECS, valid_attachment_id};
use serde::Deserialize;

use crate::api::{AuthDevice, JsonBody, lock};
use crate::db::BlobRow;
use crate::openapi::Refused;
use crate::{AppState, RelayError, now_ms};

type Shared = Arc<AppState>;

/// The blob directory under the data directory (created private).
pub(crate) fn blob_dir(data_dir: &Path) -> Result<PathBuf, RelayError> {
    let dir = data_dir.join("attachments");
    std::fs::create_dir_all(&dir).map_err(|e| RelayError::io("create", &dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| RelayError::io("restrict", &dir, e))?;
    }
    Ok(dir)
}

/// Deletes the files of expired blobs (the purge task, every tick).
pub(crate) fn purge(s: &AppState, now: i64) {
    let ids = match lock(&s.db).and_then(|mut db| db.purge_blobs(now)) {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!("attachment purge failed: {e}");
            return;
        }
    };
    for id in &ids {
        let _ = std::fs::remove_file(s.blob_dir.join(id));
    }
    if !ids.is_empty() {
        tracing::info!("purged {} expired attachment(s)", ids.len());
    }
}

fn bad(msg: impl Into<String>) -> RelayError {
    RelayError::BadRequest(msg.into())
}

fn checked_id(id: Result<UrlPath<String>, PathRejection>) -> Result<String, RelayError> {
    let UrlPath(id) = id.map_err(|rej| bad(format!("invalid path: {}", rej.body_text())))?;
    if !valid_attachment_id(&id) {
        return Err(bad("an attachment id is 32 lowercase hex characters"));
    }
    Ok(id)
}

fn status(row: &BlobRow) -> AttachmentStatus {
    AttachmentStatus {
        id: row.id.clone(),
        size: row.size,
        received: row.received,
        expires_at_ms: row.expires_ms,
    }
}

/// The record of a live blob, or 404 / 410.
fn live(s: &AppState, id: &str) -> Result<BlobRow, RelayError> {
    let row = lock(&s.db)?
        .blob(id)?
        .ok_or_else(|| RelayError::NotFound("no such attachment".into()))?;
    if row.purged || row.expires_ms <= now_ms() {
        return Err(RelayError::Gone);
    }
    Ok(row)
}

/// Announces an upload (idempotent for the same device and size).
#[utoipa::path(post, path = "/attachments", tag = "attachments",
    security(("bearer" = [])),
    request_body = AttachmentCreate,
    responses((status = 200, description = "where the upload stands", body = AttachmentStatus), Refused))]
pub(crate) async fn create(
    State(s): State<Shared>,
    AuthDevice(device): AuthDevice,
    JsonBody(req): JsonBody<AttachmentCreate>,
) -> Result<Json<AttachmentStatus>, RelayError> {
    if !valid_attachment_id(&req.id) {
        return Err(bad("an attachment id is 32 lowercase hex characters"));
    }
    if req.size == 0 {
        return Err(bad("an attachment has at least one byte"));
    }
    if req.size > s.limits.attachment_max {
        return Err(RelayError::TooLarge(format!(
            "an attachment is at most {} bytes here",
            s.limits.attachment_max
        )));
    }
    if req.ttl_secs == 0 || req.ttl_secs > MAX_TTL_SECS {
        return Err(bad(format!("ttl_secs must be 1 to {MAX_TTL_SECS}")));
    }
    let now = now_ms();
    let expires = now.saturating_add(req.ttl_secs as i64 * 1000);
    let row = lock(&s.db)?.create_blob(
        &req.id,
        &device,
        req.size,
        expires,
        s.limits.attachment_quota,
        now,
    )?;
    if s.hooks.attachment_claim_all.load(Ordering::SeqCst) {
        return Ok(Json(AttachmentStatus {
            received: row.size,
            ..status(&row)
        }));
    }
    Ok(Json(status(&row)))
}

/// Where an upload stands.
#[utoipa::path(get, path = "/attachments/{id}/status", tag = "attachments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "attachment id, 32 lowercase hex", pattern = "^[0-9a-f]{32}$")),
    responses((status = 200, description = "where the upload stands", body = AttachmentStatus), Refused))]
pub(crate) async fn get_status(
    State(s): State<Shared>,
    AuthDevice(_device): AuthDevice,
    id: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<AttachmentStatus>, RelayError> {
    let id = checked_id(id)?;
    Ok(Json(status(&live(&s, &id)?)))
}

/// Where a piece goes.
#[derive(Deserialize, utoipa::IntoParams)]
pub(crate) struct PieceQuery {
    /// Byte offset of the piece: where the relay stands.
    offset: u64,
}

/// Appends a piece of an upload at `offset`.
#[utoipa::path(put, path = "/attachments/{id}", tag = "attachments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "attachment id, 32 lowercase hex", pattern = "^[0-9a-f]{32}$"), PieceQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "where the upload stands", body = AttachmentStatus), Refused))]
pub(crate) async fn put_piece(
    State(s): State<Shared>,
    AuthDevice(device): AuthDevice,
    id: Result<UrlPath<String>, PathRejection>,
    query: Result<Query<PieceQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Json<AttachmentStatus>, RelayError> {
    let id = checked_id(id)?;
    let Query(q) = query.map_err(|rej| bad(format!("invalid query: {}", rej.body_text())))?;
    let row = live(&s, &id)?;
    if row.owner != device {
        return Err(RelayError::NotFound(
            "no such upload for this device".into(),
        ));
    }
    if q.offset != row.received {
        return Err(RelayError::Conflict(format!(
            "the upload stands at byte {}; send the piece from there",
            row.received
        )));
    }
    let end = row.received.saturating_add(body.len() as u64);
    if end > row.size {
        return Err(RelayError::TooLarge(format!(
            "the piece runs past the announced size of {} bytes",
            row.size
        )));
    }
    if body.is_empty() {
        return Ok(Json(status(&row)));
    }
    let fail = s
        .hooks
        .attachment_fail_piece
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok_and(|n| n == 1);
    let lost = || RelayError::Busy("the answer was lost (test hook)".into());
    if fail && !s.hooks.attachment_fail_stored.load(Ordering::SeqCst) {
        return Err(lost());
    }
    if !lock(&s.uploading)?.insert(id.clone()) {
        return Err(RelayError::Conflict(
            "another piece of this upload is being written; retry".into(),
        ));
    }
    let path = s.blob_dir.join(&id);
    let at = row.received;
    let written = tokio::task::spawn_blocking(move || append(&path, at, &body))
        .await
        .map_err(|e| RelayError::Internal(e.to_string()))
        .and_then(|r| r);
    let recorded = written.and_then(|()| lock(&s.db)?.set_blob_received(&id, end));
    lock(&s.uploading)?.remove(&id);
    recorded?;
    crate::metrics::Metrics::add(&s.metrics.attachment_bytes_in, end - at);
    if fail {
        return Err(lost());
    }
    Ok(Json(AttachmentStatus {
        received: end,
        ..status(&row)
    }))
}

/// Writes `bytes` at `at`, cutting anything past `at` first, and syncs.
fn append(path: &Path, at: u64, bytes: &[u8]) -> Result<(), RelayError> {
    let io = |e| RelayError::io("write the attachment", path, e);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    f.set_len(at).map_err(io)?;
    f.seek(SeekFrom::Start(at)).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_data().map_err(io)
}

/// Parses `Range: bytes=N-` (the only form a resuming client sends).
fn range_start(headers: &HeaderMap, size: u64) -> Result<Option<u64>, RelayError> {
    let Some(v) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let start = v
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| bad("only `Range: bytes=N-` is served"))?;
    if start >= size {
        return Err(bad(format!(
            "the range starts past the blob's {size} bytes"
        )));
    }
    Ok(Some(start))
}

/// Streams a complete blob (from `Range: bytes=N-` when given).
#[utoipa::path(get, path = "/attachments/{id}", tag = "attachments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "attachment id, 32 lowercase hex", pattern = "^[0-9a-f]{32}$"),
        ("range" = Option<String>, Header, description = "`bytes=N-` to resume")),
    responses(
        (status = 200, description = "the encrypted blob", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "the blob from the asked offset", content_type = "application/octet-stream", body = Vec<u8>),
        Refused))]
pub(crate) async fn download(
    State(s): State<Shared>,
    AuthDevice(_device): AuthDevice,
    id: Result<UrlPath<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, RelayError> {
    let id = checked_id(id)?;
    let row = live(&s, &id)?;
    if row.received < row.size {
        return Err(RelayError::Conflict(
            "the upload is not complete yet; retry later".into(),
        ));
    }
    let start = range_start(&headers, row.size)?;
    let path = s.blob_dir.join(&id);
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| RelayError::io("open the attachment", &path, e))?;
    let from = start.unwrap_or(0);
    tokio::io::AsyncSeekExt::seek(&mut file, SeekFrom::Start(from))
        .await
        .map_err(|e| RelayError::io("read the attachment", &path, e))?;
    let len = row.size - from;
    crate::metrics::Metrics::add(&s.metrics.attachment_bytes_out, len);
    let cut = s.hooks.attachment_cut_after.swap(0, Ordering::SeqCst);
    let body = if cut > 0 && cut < len {
        use futures_util::StreamExt;
        let head = tokio_util::io::ReaderStream::new(tokio::io::AsyncReadExt::take(file, cut));
        let lost = futures_util::stream::once(async {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection lost (test hook)",
            ))
        });
        Body::from_stream(head.chain(lost))
    } else {
        Body::from_stream(tokio_util::io::ReaderStream::new(
            tokio::io::AsyncReadExt::take(file, len),
        ))
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    h.insert(
        header::ACCEPT_RANGES,
        header::HeaderValue::from_static("bytes"),
    );
    if let Some(from) = start {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        let range = format!("bytes {from}-{}/{}", row.size - 1, row.size);
        resp.headers_mut().insert(
            header::CONTENT_RANGE,
            header::HeaderValue::from_str(&range)
                .map_err(|e| RelayError::Internal(e.to_string()))?,
        );
    }
    Ok(resp.into_response())
}
