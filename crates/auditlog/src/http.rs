//! The HTTP servers of the long-running subcommands: the operational endpoints
//! (`/metrics`, `/healthz`, `/readyz`) and the accept loop that enforces [`HttpLimits`].
//!
//! ```text
//!  accept ─► a primary permit? ─► hyper http1 (head/idle timeouts, head size) ─► router
//!               │ no
//!               ▼
//!           a reserve permit? ─► the same, ops routes only; anything else 503
//!               │ no
//!               ▼
//!           canned 503, close (at most [`MAX_SHEDDING`] at once, each briefly)
//! ```
//!
//! The cap on connections is kept below the process's open-file limit, so `accept` does
//! not fail with EMFILE: excess clients are shed at once instead of waiting in the
//! backlog. A connection's phase (idle, reading a head, busy with a request) decides which
//! timeout applies; [`GuardedIo`] enforces it on the socket and replaces hyper's own
//! empty-bodied 400/414/431 answers with the API's JSON error body.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use anyhow::{Result, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::api::MessageBody;

/// Says whether the process can do its job right now (`Err` carries the reason).
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Connections beyond the cap that are still served, for the operational routes only, so
/// probes are answered while the API is saturated.
pub const RESERVED_CONNECTIONS: usize = 32;

/// How long a reserved connection may take to send its request head (or stay silent):
/// probes send theirs at once, so a slow client cannot hold a reserved slot for long.
pub const RESERVED_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Connections a separate operational listener serves at once.
pub const OPS_MAX_CONNECTIONS: usize = 64;

/// Shed connections a listener answers at once (each for at most [`SHED_LINGER`]).
pub const MAX_SHEDDING: usize = 64;

/// How long a shed connection is given to take its 503.
const SHED_LINGER: Duration = Duration::from_millis(500);

/// File descriptors kept free of client connections for everything else the process opens
/// (ClickHouse connections, listeners, logs).
const OTHER_FILE_DESCRIPTORS: usize = 64;

/// How long the accept loop pauses after `accept` failed, so a persistent failure (such as
/// a full descriptor table) does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// What one HTTP client may take of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// From a request's first byte to its last header line.
    pub header_read_timeout: Duration,
    /// With no request in progress (a new or kept-alive connection), or with the client
    /// reading nothing of its response.
    pub idle_timeout: Duration,
    /// Connections served at once on the API listener.
    pub max_connections: usize,
    /// Method, target (path and query) and version: longer is a 414.
    pub max_request_line_bytes: usize,
    /// Header names, values and separators: more is a 431.
    pub max_header_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_request_line_bytes: 16 * 1024,
            max_header_bytes: 32 * 1024,
        }
    }
}

impl HttpLimits {
    /// Rejects limits that would refuse every request.
    pub fn validate(&self) -> Result<()> {
        if self.header_read_timeout.is_zero() {
            bail!("the api header read timeout must be at least 1 second");
        }
        if self.idle_timeout.is_zero() {
            bail!("the api idle timeout must be at least 1 second");
        }
        if self.max_connections == 0 {
            bail!("the api max connections must be at least 1");
        }
        if self.max_request_line_bytes < 1024 || self.max_header_bytes < 1024 {
            bail!(
                "the api request line and header limits must be at least 1024 bytes each, found {} and {}",
                self.max_request_line_bytes,
                self.max_header_bytes
            );
        }
        Ok(())
    }

    /// hyper's read buffer: room for a head at both limits, so our own checks (and their
    /// precise messages) see every head that is merely too large; beyond it hyper
    /// answers 431 itself.
    fn head_buffer_bytes(&self) -> usize {
        (self.max_request_line_bytes + self.max_header_bytes + 1024).max(8192)
    }
}

/// The most connections the open-file limit leaves room for, below `wanted`.
///
/// `other` is what the process needs besides API connections (reserve, other listeners).
pub fn fit_connections_to_file_limit(wanted: usize, other: usize) -> usize {
    let Some(limit) = open_files_soft_limit() else {
        return wanted;
    };
    let room = limit
        .saturating_sub(other + MAX_SHEDDING + OTHER_FILE_DESCRIPTORS)
        .max(8);
    if room < wanted {
        tracing::warn!(
            wanted,
            serving = room,
            open_files_limit = limit,
            "the open-file limit leaves room for fewer api connections than configured; raise `ulimit -n` to serve more"
        );
        return room;
    }
    wanted
}

/// The soft `RLIMIT_NOFILE`, from `/proc` (Linux); `None` when unknown or unlimited.
fn open_files_soft_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[derive(Clone)]
struct OpsState {
    metrics: PrometheusHandle,
    readiness: Readiness,
}

/// `/metrics` (Prometheus text), `/healthz` (the process is alive), `/readyz` (it can work).
pub fn ops_router(metrics: PrometheusHandle, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(OpsState { metrics, readiness })
}

/// The router a reserved connection gets: the operational routes, and 503 for the rest.
pub fn reserve_router(ops: Router) -> Router {
    ops.fallback(|| async {
        busy_response(
            "Every API connection is taken; /healthz, /readyz and /metrics are still answered. Try again shortly.",
        )
    })
}

async fn render_metrics(State(state): State<OpsState>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn ready(State(state): State<OpsState>) -> Response {
    match (state.readiness)() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

/// A JSON error answer in the API's shape.
pub fn error_response(status: StatusCode, message: &str, detail: &str) -> Response {
    (status, axum::Json(MessageBody { message, detail })).into_response()
}

fn busy_response(detail: &str) -> Response {
    let mut response = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "The server is busy.",
        detail,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Middleware: a request line or headers over [`HttpLimits`] is a 414 or 431 with a JSON
/// body that names the limit.
async fn enforce_head_limits(
    State(limits): State<HttpLimits>,
    request: Request,
    next: Next,
) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |target| target.as_str().len());
    // "METHOD SP target SP HTTP/1.1"
    let line = request.method().as_str().len() + 1 + target + 1 + "HTTP/1.1".len();
    if line > limits.max_request_line_bytes {
        count_rejection("request_line");
        return error_response(
            StatusCode::URI_TOO_LONG,
            "The request line is too long.",
            &format!(
                "The request line is {line} bytes; this server accepts at most {}. Shorten the query (the filter `q` is limited to 4096 bytes).",
                limits.max_request_line_bytes
            ),
        );
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    if headers > limits.max_header_bytes {
        count_rejection("headers");
        return error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "The request headers are too large.",
            &format!(
                "The request headers are {headers} bytes; this server accepts at most {}.",
                limits.max_header_bytes
            ),
        );
    }
    next.run(request).await
}

/// Middleware: a 4xx without a JSON body (a 404, a 405, an extractor's rejection) gets the
/// API's JSON error shape, its text as the detail.
async fn json_client_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !response.status().is_client_error() || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // These bodies are short texts written by axum; anything longer is not worth echoing.
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let message = parts.status.canonical_reason().unwrap_or("Client error.");
    let json = error_response(
        parts.status,
        &format!("{message}."),
        String::from_utf8_lossy(&text).trim(),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let (json_parts, json_body) = json.into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, json_body)
}

/// `router` with the head limits checked first and every 4xx in the JSON error shape.
pub fn with_limits(router: Router, limits: HttpLimits) -> Router {
    router
        .layer(axum::middleware::from_fn(json_client_errors))
        .layer(axum::middleware::from_fn_with_state(
            limits,
            enforce_head_limits,
        ))
}

fn count_rejection(reason: &'static str) {
    metrics::counter!("auditlog_http_rejected_requests_total", "reason" => reason).increment(1);
}

/// A pool of connections served the same way.
#[derive(Debug, Clone)]
struct Pool {
    router: Router,
    permits: Arc<Semaphore>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    keep_alive: bool,
    outcome: &'static str,
}

/// A listener with its limits, ready to serve.
#[derive(Debug)]
pub struct Server {
    name: &'static str,
    listener: TcpListener,
    limits: HttpLimits,
    primary: Pool,
    reserve: Option<Pool>,
    /// The canned answer to a shed connection.
    shed_answer: Bytes,
    /// Shed connections being answered; beyond [`MAX_SHEDDING`] they are just closed.
    shedding: Arc<Semaphore>,
}

impl Server {
    /// Binds `address`; `router` serves up to `max_connections` at once under `limits`.
    pub async fn bind(
        name: &'static str,
        address: SocketAddr,
        router: Router,
        max_connections: usize,
        limits: HttpLimits,
    ) -> Result<Self> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|error| anyhow::anyhow!("cannot listen on {address}: {error}"))?;
        let router = with_limits(router, limits);
        Ok(Self {
            name,
            listener,
            limits,
            primary: Pool {
                router,
                permits: Arc::new(Semaphore::new(max_connections)),
                header_read_timeout: limits.header_read_timeout,
                idle_timeout: limits.idle_timeout,
                keep_alive: true,
                outcome: "served",
            },
            reserve: None,
            shed_answer: raw_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is busy.",
                "Too many connections are open. Try again shortly.",
            ),
            shedding: Arc::new(Semaphore::new(MAX_SHEDDING)),
        })
    }

    /// Serves `connections` more, beyond the cap, with `router`, a short head timeout and
    /// no keep-alive.
    pub fn with_reserve(mut self, router: Router, connections: usize) -> Self {
        let router = with_limits(router, self.limits);
        self.reserve = Some(Pool {
            router,
            permits: Arc::new(Semaphore::new(connections)),
            header_read_timeout: RESERVED_HEADER_READ_TIMEOUT.min(self.limits.header_read_timeout),
            idle_timeout: RESERVED_HEADER_READ_TIMEOUT.min(self.limits.idle_timeout),
            keep_alive: false,
            outcome: "reserved",
        });
        self
    }

    /// The bound address (useful when binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts until `shutdown` turns true, then lets open connections finish.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let name = self.name;
        tracing::info!(listen = %self.local_addr()?, listener = name, "http endpoints listening");
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = stopped(&mut shutdown) => break,
            };
            while connections.try_join_next().is_some() {}
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    metrics::counter!("auditlog_http_accept_errors_total", "listener" => name)
                        .increment(1);
                    tracing::warn!(%error, listener = name, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            };
            let admitted = match self.primary.permits.clone().try_acquire_owned() {
                Ok(permit) => Some((&self.primary, permit)),
                Err(_) => self.reserve.as_ref().and_then(|reserve| {
                    let permit = reserve.permits.clone().try_acquire_owned().ok()?;
                    Some((reserve, permit))
                }),
            };
            let Some((pool, permit)) = admitted else {
                metrics::counter!("auditlog_http_connections_total", "listener" => name, "outcome" => "shed").increment(1);
                if let Ok(permit) = self.shedding.clone().try_acquire_owned() {
                    connections.spawn(shed(stream, self.shed_answer.clone(), permit));
                }
                continue;
            };
            metrics::counter!("auditlog_http_connections_total", "listener" => name, "outcome" => pool.outcome).increment(1);
            connections.spawn(serve_connection(
                stream,
                pool.clone(),
                permit,
                self.limits,
                name,
                shutdown.clone(),
            ));
        }
        drop(self.listener);
        connections.join_all().await;
        Ok(())
    }
}

/// Answers a shed connection 503 and closes it.
///
/// Closing a socket with unread request bytes resets it, and a reset can destroy the
/// answer before the client reads it; so the request is read (briefly) first.
async fn shed(mut stream: TcpStream, answer: Bytes, _permit: OwnedSemaphorePermit) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(SHED_LINGER, async {
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        let mut sink = [0_u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// Returns once `shutdown` is true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Serves `router` on `listen` with the default limits until `shutdown` turns true.
pub async fn serve(
    listen: SocketAddr,
    router: Router,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    Server::bind(
        "ops",
        listen,
        router,
        OPS_MAX_CONNECTIONS,
        HttpLimits::default(),
    )
    .await?
    .run(shutdown)
    .await
}

async fn serve_connection(
    stream: TcpStream,
    pool: Pool,
    permit: OwnedSemaphorePermit,
    limits: HttpLimits,
    listener: &'static str,
    mut shutdown: watch::Receiver<bool>,
) {
    metrics::gauge!("auditlog_http_open_connections", "listener" => listener).increment(1.0);
    let state = Arc::new(Mutex::new(ConnState {
        phase: Phase::Idle(Instant::now()),
        reader: None,
        unflushed: false,
    }));
    let io = GuardedIo {
        stream,
        state: Arc::clone(&state),
        header_read_timeout: pool.header_read_timeout,
        idle_timeout: pool.idle_timeout,
        timer: Box::pin(tokio::time::sleep(pool.idle_timeout)),
        write_stalled_since: None,
        answer: Answer::Hyper,
        limits,
        listener,
    };
    let router = pool.router;
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let in_flight = InFlight::start(Arc::clone(&state));
        let router = router.clone();
        async move {
            let response = match router.oneshot(request.map(Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|body| TrackedBody {
                body,
                _in_flight: in_flight,
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_buf_size(limits.head_buffer_bytes())
        .keep_alive(pool.keep_alive);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut shutdown) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, listener, "http connection ended with an error");
    }
    metrics::gauge!("auditlog_http_open_connections", "listener" => listener).decrement(1.0);
    drop(permit);
}

/// Where a connection stands, which decides the timeout that applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request in progress since this instant: the idle timeout applies.
    Idle(Instant),
    /// A request head started arriving at this instant: the header read timeout applies.
    Head(Instant),
    /// This many requests were handed to the router and their responses are not done.
    Busy(usize),
}

/// A connection's phase, shared by its socket and its requests.
#[derive(Debug)]
struct ConnState {
    phase: Phase,
    /// The task that last found nothing to read while busy: hyper does not read again by
    /// itself when a response is done, so it is woken to start the idle timer.
    reader: Option<Waker>,
    /// A response was handed to hyper and has not been flushed since: its last bytes may
    /// still be written after its request is done.
    unflushed: bool,
}

fn lock(state: &Mutex<ConnState>) -> std::sync::MutexGuard<'_, ConnState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Marks a connection busy from the moment hyper hands a request over until its response
/// body is done (or dropped).
#[derive(Debug)]
struct InFlight(Arc<Mutex<ConnState>>);

impl InFlight {
    fn start(state: Arc<Mutex<ConnState>>) -> Self {
        {
            let mut current = lock(&state);
            current.phase = match current.phase {
                Phase::Busy(requests) => Phase::Busy(requests + 1),
                Phase::Idle(_) | Phase::Head(_) => Phase::Busy(1),
            };
            current.unflushed = true;
        }
        Self(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut current = lock(&self.0);
        current.phase = match current.phase {
            Phase::Busy(requests) if requests > 1 => Phase::Busy(requests - 1),
            _ => Phase::Idle(Instant::now()),
        };
        if let (Phase::Idle(_), Some(reader)) = (current.phase, current.reader.take()) {
            reader.wake();
        }
    }
}

/// A response body that keeps its connection marked busy until it is sent.
struct TrackedBody {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Who writes the bytes hyper sends before any request reached the router.
enum Answer {
    /// Nothing was written yet outside a request.
    Hyper,
    /// hyper answered a head it could not parse; these bytes (the JSON version) go out
    /// instead, from this offset.
    Replacing(Bytes, usize),
}

/// The socket as hyper sees it: it times out by phase, and rewrites hyper's own answers.
struct GuardedIo {
    stream: TcpStream,
    state: Arc<Mutex<ConnState>>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    timer: Pin<Box<Sleep>>,
    write_stalled_since: Option<Instant>,
    answer: Answer,
    limits: HttpLimits,
    listener: &'static str,
}

impl GuardedIo {
    /// Whether `deadline` has passed; otherwise the timer wakes the task at it.
    fn expired(&mut self, deadline: Instant, cx: &mut Context<'_>) -> bool {
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        self.timer.as_mut().poll(cx).is_ready()
    }

    fn timed_out(&self, reason: &'static str) -> io::Error {
        metrics::counter!("auditlog_http_timeouts_total", "listener" => self.listener, "reason" => reason).increment(1);
        io::Error::new(io::ErrorKind::TimedOut, reason)
    }

    /// Writes what is left of a replacement answer.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Answer::Replacing(bytes, written) = &mut self.answer {
            if *written == bytes.len() {
                break;
            }
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let mut state = lock(&this.state);
                    if let Phase::Idle(_) = state.phase {
                        state.phase = Phase::Head(Instant::now());
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                let (deadline, reason) = {
                    let mut state = lock(&this.state);
                    match state.phase {
                        Phase::Idle(since) => (since + this.idle_timeout, "idle"),
                        Phase::Head(since) => (since + this.header_read_timeout, "header_read"),
                        // Waiting for our own answer: the client owes nothing.
                        Phase::Busy(_) => {
                            state.reader = Some(cx.waker().clone());
                            return Poll::Pending;
                        }
                    }
                };
                if this.expired(deadline, cx) {
                    return Poll::Ready(Err(this.timed_out(reason)));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // While a head is arriving (bytes read since the last response was done and
        // flushed) only hyper writes, and only its answer to a head it could not parse:
        // send the JSON version instead, and swallow the original.
        let hypers_answer = {
            let state = lock(&this.state);
            matches!(state.phase, Phase::Head(_)) && !state.unflushed
        };
        if hypers_answer || matches!(this.answer, Answer::Replacing(..)) {
            if let Answer::Hyper = this.answer {
                this.answer = Answer::Replacing(replacement_answer(buf, &this.limits), 0);
            }
            if let Poll::Ready(Err(error)) = this.poll_replacement(cx) {
                return Poll::Ready(Err(error));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.write_stalled_since = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let since = *this.write_stalled_since.get_or_insert_with(Instant::now);
                if this.expired(since + this.idle_timeout, cx) {
                    return Poll::Ready(Err(this.timed_out("write_stalled")));
                }
                Poll::Pending
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        ready!(Pin::new(&mut this.stream).poll_flush(cx))?;
        let mut state = lock(&this.state);
        if !matches!(state.phase, Phase::Busy(_)) {
            state.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// The JSON answer that replaces hyper's empty one, by the status hyper chose.
fn replacement_answer(hyper_answer: &[u8], limits: &HttpLimits) -> Bytes {
    let status = hyper_answer
        .get(9..12)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::BAD_REQUEST);
    match status {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            count_rejection("head");
            raw_answer(
                status,
                "The request headers are too large.",
                &format!(
                    "The request line and headers exceed {} bytes (or 100 header lines).",
                    limits.head_buffer_bytes()
                ),
            )
        }
        StatusCode::URI_TOO_LONG => {
            count_rejection("request_line");
            raw_answer(
                status,
                "The request line is too long.",
                &format!(
                    "This server accepts request lines of at most {} bytes.",
                    limits.max_request_line_bytes
                ),
            )
        }
        _ => {
            count_rejection("malformed");
            raw_answer(
                status,
                "The request is not valid HTTP/1.1.",
                "The request line or a header could not be parsed.",
            )
        }
    }
}

/// A whole HTTP/1.1 answer with a JSON error body, ending the connection.
fn raw_answer(status: StatusCode, message: &str, detail: &str) -> Bytes {
    // Serializing two strings cannot fail.
    let body = serde_json::to_string(&MessageBody { message, detail }).unwrap_or_default();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        answer.push_str("retry-after: 1\r\n");
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Bytes::from(answer)
}

#[cfg(test)]
mod tests {
    //! The accept loop on a loopback socket: what a slow, silent or greedy client gets.

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Generous: the limits under test are 1 s; this only stops a broken test hanging.
    const PATIENCE: Duration = Duration::from_secs(20);

    fn limits() -> HttpLimits {
        HttpLimits {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(2),
            max_connections: 2,
            ..HttpLimits::default()
        }
    }

    async fn start(reserve: usize) -> (SocketAddr, watch::Sender<bool>) {
        let ops = Router::new().route("/healthz", get(|| async { "ok\n" }));
        let api = Router::new()
            .route("/api", get(|| async { "page\n" }))
            .merge(ops.clone());
        let mut server = Server::bind("test", "127.0.0.1:0".parse().unwrap(), api, 2, limits())
            .await
            .unwrap();
        if reserve > 0 {
            server = server.with_reserve(reserve_router(ops), reserve);
        }
        let address = server.local_addr().unwrap();
        let (stop, shutdown) = watch::channel(false);
        tokio::spawn(server.run(shutdown));
        (address, stop)
    }

    /// Everything the server sends until it closes the connection.
    async fn read_to_close(stream: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
            .await
            .expect("the server closes the connection")
            .unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    }

    async fn get_once(address: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        read_to_close(&mut stream).await
    }

    #[tokio::test]
    async fn a_head_without_its_final_crlf_is_dropped() {
        let (address, _stop) = start(0).await;
        let mut slow = TcpStream::connect(address).await.unwrap();
        slow.write_all(b"GET /api HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        assert_eq!(read_to_close(&mut slow).await, "");
    }

    #[tokio::test]
    async fn silent_and_kept_alive_connections_are_closed_when_idle() {
        let (address, _stop) = start(0).await;
        let mut silent = TcpStream::connect(address).await.unwrap();
        assert_eq!(read_to_close(&mut silent).await, "");
        let mut kept = TcpStream::connect(address).await.unwrap();
        kept.write_all(b"GET /api HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = read_to_close(&mut kept).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("page\n"), "{answer}");
    }

    #[tokio::test]
    async fn beyond_the_cap_the_reserve_answers_probes_and_the_rest_is_shed() {
        let (address, _stop) = start(1).await;
        // Two silent connections take the cap.
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(TcpStream::connect(address).await.unwrap());
        }
        // Let the server accept them before the next ones arrive.
        let healthz = loop {
            let answer = get_once(address, "/healthz").await;
            if !answer.contains("Too many connections") {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(healthz.starts_with("HTTP/1.1 200 OK"), "{healthz}");
        let api = get_once(address, "/api").await;
        assert!(api.starts_with("HTTP/1.1 503"), "{api}");
        assert!(api.contains("\"message\":\"The server is busy.\""), "{api}");
        // The reserve itself taken, a new connection gets the canned answer at once.
        let _reserve = TcpStream::connect(address).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let shed = get_once(address, "/healthz").await;
        assert!(shed.starts_with("HTTP/1.1 503"), "{shed}");
        assert!(shed.contains("Too many connections are open"), "{shed}");
    }

    #[tokio::test]
    async fn hypers_own_rejections_carry_the_json_body() {
        let (address, _stop) = start(0).await;
        for (request, status) in [
            (b"NOT HTTP AT ALL\r\n\r\n".to_vec(), "400"),
            (
                [
                    b"GET /api HTTP/1.1\r\nx-big: ".as_slice(),
                    &vec![b'a'; limits().head_buffer_bytes() + 1],
                    b"\r\n\r\n",
                ]
                .concat(),
                "431",
            ),
        ] {
            let mut stream = TcpStream::connect(address).await.unwrap();
            // The server may answer and close before the whole head is written.
            let _ = stream.write_all(&request).await;
            let answer = read_to_close(&mut stream).await;
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status} ")),
                "{answer}"
            );
            let body = answer.split("\r\n\r\n").nth(1).unwrap();
            let json: serde_json::Value = serde_json::from_str(body).unwrap();
            assert!(json["message"].is_string(), "{answer}");
        }
    }

    #[tokio::test]
    async fn a_bad_head_after_a_kept_alive_answer_gets_the_json_body_and_the_answer_stays_whole() {
        let (address, _stop) = start(0).await;
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /api HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = vec![0_u8; 4096];
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut first))
            .await
            .unwrap()
            .unwrap();
        let first = String::from_utf8_lossy(&first[..n]).into_owned();
        assert!(first.starts_with("HTTP/1.1 200 OK"), "{first}");
        assert!(first.ends_with("page\n"), "{first}");
        stream.write_all(b"NOT HTTP\r\n\r\n").await.unwrap();
        let second = read_to_close(&mut stream).await;
        assert!(second.starts_with("HTTP/1.1 400 "), "{second}");
        assert!(
            second.contains("\"message\":\"The request is not valid HTTP/1.1.\""),
            "{second}"
        );
    }

    #[test]
    fn limits_that_refuse_everything_are_rejected() {
        assert!(HttpLimits::default().validate().is_ok());
        for broken in [
            HttpLimits {
                max_connections: 0,
                ..HttpLimits::default()
            },
            HttpLimits {
                header_read_timeout: Duration::ZERO,
                ..HttpLimits::default()
            },
            HttpLimits {
                max_header_bytes: 10,
                ..HttpLimits::default()
            },
        ] {
            assert!(broken.validate().is_err(), "{broken:?}");
        }
    }
}
