//! One connection's guard: the socket as hyper sees it, timed out by the connection's
//! phase, with hyper's own empty-bodied 400/414/431 answers replaced by JSON ones.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::answers::{count_rejection, raw_answer};
use super::limits::HttpLimits;

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
pub(super) struct InFlight(Arc<Mutex<ConnState>>);

/// A connection's shared phase, as its requests see it.
#[derive(Debug, Clone)]
pub(super) struct ConnPhase(Arc<Mutex<ConnState>>);

impl ConnPhase {
    /// Marks the connection busy with one more request, until the guard is dropped.
    pub(super) fn start_request(&self) -> InFlight {
        InFlight::start(Arc::clone(&self.0))
    }
}

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
pub(super) struct TrackedBody {
    body: Body,
    _in_flight: InFlight,
}

impl TrackedBody {
    pub(super) fn new(body: Body, in_flight: InFlight) -> Self {
        Self {
            body,
            _in_flight: in_flight,
        }
    }
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
pub(super) struct GuardedIo {
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
    /// A fresh connection, idle since now, and the phase its requests update.
    pub(super) fn new(
        stream: TcpStream,
        header_read_timeout: Duration,
        idle_timeout: Duration,
        limits: HttpLimits,
        listener: &'static str,
    ) -> (Self, ConnPhase) {
        let state = Arc::new(Mutex::new(ConnState {
            phase: Phase::Idle(Instant::now()),
            reader: None,
            unflushed: false,
        }));
        let io = Self {
            stream,
            state: Arc::clone(&state),
            header_read_timeout,
            idle_timeout,
            timer: Box::pin(tokio::time::sleep(idle_timeout)),
            write_stalled_since: None,
            answer: Answer::Hyper,
            limits,
            listener,
        };
        (io, ConnPhase(state))
    }

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
