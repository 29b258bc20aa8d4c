//! The accept loop: a capped pool of connections, a reserve for the operational routes,
//! and a canned 503 for everything beyond them.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use bytes::Bytes;
use hyper::body::Incoming;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use super::answers::{raw_answer, with_limits};
use super::connection::{GuardedIo, TrackedBody};
use super::limits::{HttpLimits, MAX_SHEDDING};
use crate::Error;

/// Connections beyond the cap that are still served, for the operational routes only, so
/// probes are answered while the API is saturated.
pub const RESERVED_CONNECTIONS: usize = 32;

/// How long a reserved connection may take to send its request head (or stay silent):
/// probes send theirs at once, so a slow client cannot hold a reserved slot for long.
pub const RESERVED_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Connections a separate operational listener serves at once.
pub const OPS_MAX_CONNECTIONS: usize = 64;

/// How long a shed connection is given to take its 503.
const SHED_LINGER: Duration = Duration::from_millis(500);

/// How long the accept loop pauses after `accept` failed, so a persistent failure (such as
/// a full descriptor table) does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

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
    ) -> Result<Self, Error> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|error| Error::Bind { address, error })?;
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
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), Error> {
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
) -> Result<(), Error> {
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
    let (io, phase) = GuardedIo::new(
        stream,
        pool.header_read_timeout,
        pool.idle_timeout,
        limits,
        listener,
    );
    let router = pool.router;
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let in_flight = phase.start_request();
        let router = router.clone();
        async move {
            let response = match router.oneshot(request.map(Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|body| TrackedBody::new(body, in_flight)))
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
