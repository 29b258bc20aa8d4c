//! `GET /api/v2/audit/export?q=&format=ndjson|csv`: every matching event, streamed.
//!
//! ```text
//!  first chunk (errors here still get a proper status)
//!      │
//!      ▼
//!  200 + body stream: chunk rows ─► encode ─► bytes ─► next chunk after the last row's cursor
//! ```
//!
//! The events are read in keyset chunks of [`EXPORT_CHUNK_ROWS`] (`after` the previous
//! chunk's last row, the same query as `after=` pages), so memory holds one chunk whatever
//! the export's size, each ClickHouse query stays short and under the normal
//! `max_execution_time`, and the body only advances as fast as the client reads
//! (hyper polls the stream when it can send). Rows ingested at the top while an export
//! runs are not in it: it is the events up to the moment it started, newest first.
//!
//! Once the 200 is sent, a failure can only cut the stream: the chunked body ends without
//! its terminating chunk, which HTTP clients report as an incomplete response. Every end
//! is logged once with the rows handed to the connection: "finished", or "cut off" with
//! the reason (a query error, a timeout, or the client gone: it disconnected or stopped
//! reading), and cut-offs are counted in `auditlog_api_export_cutoffs_total{reason}`.

use std::sync::Arc;

use auditlog_query::{
    AuditLog, AuditLogRow, Cursor, Page, QueryRunner, ResolvedFilter, Visibility, write_csv_header,
    write_csv_rows, write_ndjson,
};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::{ApiError, ApiState, AuditRequest, invalid_param};

/// Rows per ClickHouse query of an export.
pub const EXPORT_CHUNK_ROWS: u64 = 5_000;

/// The export's output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One Coder `AuditLog` JSON object per line.
    Ndjson,
    /// A header row, then one flattened row per event ([`auditlog_query::CSV_HEADER`]).
    Csv,
}

impl ExportFormat {
    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "audit-logs.ndjson",
            ExportFormat::Csv => "audit-logs.csv",
        }
    }
}

/// The export handler.
pub(super) async fn export(
    State(state): State<ApiState>,
    request: AuditRequest,
) -> Result<Response, ApiError> {
    let format = match request.value("format")? {
        "" | "ndjson" => ExportFormat::Ndjson,
        "csv" => ExportFormat::Csv,
        other => {
            return Err(invalid_param(
                "format",
                format!(
                    "Query param \"format\" has invalid value: {} is not a valid value (ndjson, csv)",
                    serde_json::Value::String(other.to_owned())
                ),
            ));
        }
    };
    let (query_text, filter) = request.filter(&state.runner).await?;
    let caller = &request.caller;
    // The first chunk is read before answering, so a bad filter or a timeout at the start
    // still gets its proper status instead of a cut-off 200.
    let first_chunk = state
        .runner
        .page(
            &caller.visibility,
            &filter,
            &Page::Offset {
                limit: EXPORT_CHUNK_ROWS,
                offset: 0,
            },
        )
        .await?;
    tracing::info!(caller = ?caller.name, query = %query_text, ?format, "audit export started");
    let stream = ExportStream::new(
        Arc::clone(&state.runner),
        caller.visibility.clone(),
        filter,
        format,
        first_chunk,
    );
    let body = Body::from_stream(futures::stream::try_unfold(stream, next_chunk));
    let mut response = body.into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(disposition) =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", format.file_name()))
    {
        response_headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

/// Where an export stands between chunks.
struct ExportStream {
    runner: Arc<QueryRunner>,
    visibility: Visibility,
    filter: ResolvedFilter,
    format: ExportFormat,
    /// A chunk read but not yet sent (the first one).
    pending: Option<Vec<AuditLogRow>>,
    /// After the last row sent.
    cursor: Option<Cursor>,
    header_written: bool,
    done: bool,
    /// Rows encoded and handed to the connection so far.
    rows_sent: u64,
    /// How the export ended, once it has; dropped without one, the client went away.
    end: Option<ExportEnd>,
}

impl ExportStream {
    /// A stream that starts with `first_chunk`, already read, and nothing sent.
    fn new(
        runner: Arc<QueryRunner>,
        visibility: Visibility,
        filter: ResolvedFilter,
        format: ExportFormat,
        first_chunk: Vec<AuditLogRow>,
    ) -> Self {
        Self {
            runner,
            visibility,
            filter,
            format,
            pending: Some(first_chunk),
            cursor: None,
            header_written: false,
            done: false,
            rows_sent: 0,
            end: None,
        }
    }
}

/// How an export ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportEnd {
    Finished,
    QueryFailed,
    TimedOut,
}

impl Drop for ExportStream {
    // The body is dropped however it ends, also when hyper gives up on the client, so this
    // is the one place that sees every end.
    fn drop(&mut self) {
        let reason = match self.end {
            Some(ExportEnd::Finished) => {
                tracing::info!(rows = self.rows_sent, "audit export finished");
                return;
            }
            Some(ExportEnd::QueryFailed) => "query error",
            Some(ExportEnd::TimedOut) => "timeout",
            None => "client disconnected",
        };
        metrics::counter!("auditlog_api_export_cutoffs_total", "reason" => reason).increment(1);
        tracing::warn!(rows = self.rows_sent, reason, "audit export cut off");
    }
}

async fn next_chunk(
    mut stream: ExportStream,
) -> Result<Option<(Bytes, ExportStream)>, auditlog_query::Error> {
    if stream.done {
        return Ok(None);
    }
    let rows = match (stream.pending.take(), stream.cursor) {
        (Some(rows), _) => rows,
        (None, Some(cursor)) => stream
            .runner
            .page(
                &stream.visibility,
                &stream.filter,
                &Page::After {
                    limit: EXPORT_CHUNK_ROWS,
                    cursor,
                },
            )
            .await
            .inspect_err(|error| {
                stream.end = Some(match error {
                    auditlog_query::Error::Timeout { .. } => ExportEnd::TimedOut,
                    _ => ExportEnd::QueryFailed,
                });
                tracing::error!(%error, "audit export query failed");
            })?,
        (None, None) => {
            stream.end = Some(ExportEnd::Finished);
            return Ok(None);
        }
    };
    stream.done = (rows.len() as u64) < EXPORT_CHUNK_ROWS;
    stream.cursor = rows.last().map(Cursor::from);
    let logs: Vec<AuditLog> = rows
        .into_iter()
        .map(|row| AuditLog::from_event(&row.into_event()))
        .collect();
    metrics::counter!("auditlog_api_export_rows_total").increment(logs.len() as u64);
    stream.rows_sent += logs.len() as u64;
    let mut bytes = Vec::with_capacity(logs.len() * 1024);
    match stream.format {
        ExportFormat::Ndjson => write_ndjson(&logs, &mut bytes),
        ExportFormat::Csv => {
            if !stream.header_written {
                write_csv_header(&mut bytes);
                stream.header_written = true;
            }
            write_csv_rows(&logs, &mut bytes);
        }
    }
    if stream.done {
        stream.end = Some(ExportEnd::Finished);
    }
    Ok(Some((Bytes::from(bytes), stream)))
}

#[cfg(test)]
mod tests {
    //! How an export's end is logged, driven chunk by chunk without a socket: the runner
    //! points at a closed port, so any query after the first chunk fails.

    use std::sync::{Arc, Mutex};

    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;

    /// A log sink the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    fn rows(count: u64) -> Vec<AuditLogRow> {
        let start = OffsetDateTime::now_utc();
        (0..count)
            .map(|index| AuditLogRow {
                id: Uuid::from_u128(u128::from(index) + 1),
                time: start - time::Duration::milliseconds(index as i64),
                request_id: Uuid::nil(),
                organization_id: Uuid::nil(),
                organization_name: String::new(),
                organization_display_name: String::new(),
                organization_icon: String::new(),
                user_id: Uuid::nil(),
                user_username: String::new(),
                user_email: String::new(),
                user_name: String::new(),
                ip: String::new(),
                user_agent: String::new(),
                resource_type: "workspace".to_owned(),
                resource_id: Uuid::nil(),
                resource_target: String::new(),
                resource_icon: String::new(),
                action: "create".to_owned(),
                diff: "{}".to_owned(),
                status_code: 200,
                additional_fields: "{}".to_owned(),
                build_reason: String::new(),
            })
            .collect()
    }

    async fn export_of(first_chunk: Vec<AuditLogRow>) -> ExportStream {
        let client = clickhouse::Client::default().with_url("http://127.0.0.1:9");
        let runner = Arc::new(QueryRunner::try_new(client, "audit", "audit_logs").unwrap());
        let filter = runner.resolve("", None, &Visibility::All).await.unwrap();
        ExportStream::new(
            runner,
            Visibility::All,
            filter,
            ExportFormat::Ndjson,
            first_chunk,
        )
    }

    #[tokio::test]
    async fn a_complete_export_logs_finished_with_its_rows() {
        let (logs, _guard) = capture();
        let stream = export_of(rows(3)).await;
        let (_, stream) = next_chunk(stream).await.unwrap().unwrap();
        assert!(next_chunk(stream).await.unwrap().is_none());
        let text = logs.text();
        assert!(text.contains("audit export finished rows=3"), "{text}");
        assert!(!text.contains("cut off"), "{text}");
    }

    #[tokio::test]
    async fn a_client_that_goes_away_is_logged_as_a_cut_off() {
        let (logs, _guard) = capture();
        let stream = export_of(rows(EXPORT_CHUNK_ROWS)).await;
        let (bytes, stream) = next_chunk(stream).await.unwrap().unwrap();
        assert!(!bytes.is_empty());
        // hyper drops the body when the connection is gone.
        drop(stream);
        let text = logs.text();
        assert!(
            text.contains(&format!(
                "audit export cut off rows={EXPORT_CHUNK_ROWS} reason=\"client disconnected\""
            )),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_failing_chunk_is_logged_as_a_cut_off_by_a_query_error() {
        let (logs, _guard) = capture();
        let stream = export_of(rows(EXPORT_CHUNK_ROWS)).await;
        let (_, stream) = next_chunk(stream).await.unwrap().unwrap();
        assert!(next_chunk(stream).await.is_err());
        let text = logs.text();
        assert!(
            text.contains(&format!(
                "audit export cut off rows={EXPORT_CHUNK_ROWS} reason=\"query error\""
            )),
            "{text}"
        );
    }
}
