//! A webhook receiver that checks what the `webhook` sink promises: every request signed
//! with HMAC-SHA256 over `timestamp.body` (checked here with the `hmac` crate, an
//! implementation independent of the sender's), and fresh (its timestamp within five
//! minutes). It records the lines of the requests it accepted.
//!
//! [`WebhookReceiver::fail_next`] makes it answer the next requests with an error status,
//! as a destination that is down for a while.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;

/// How old a request's timestamp may be, in seconds.
pub const MAX_AGE_SECS: i64 = 300;

#[derive(Debug, Default)]
struct WebhookState {
    secret: Vec<u8>,
    lines: Vec<Value>,
    batches: Vec<String>,
    requests: u64,
    bad_signatures: u64,
    stale: u64,
    failures_left: u64,
    failure_status: u16,
}

type Shared = Arc<Mutex<WebhookState>>;

/// A running webhook receiver on a free local port; stops when dropped.
#[derive(Debug)]
pub struct WebhookReceiver {
    address: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    /// Starts one that checks signatures with `secret`.
    pub async fn start(secret: &str) -> Self {
        let state = Arc::new(Mutex::new(WebhookState {
            secret: secret.as_bytes().to_vec(),
            ..WebhookState::default()
        }));
        let router = Router::new()
            .route("/hook", post(receive))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            address,
            state,
            task,
        }
    }

    /// `http://127.0.0.1:PORT/hook`, the sink's `url`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// The lines of every accepted request, parsed, in arrival order.
    pub fn lines(&self) -> Vec<Value> {
        lock(&self.state).lines.clone()
    }

    /// The `X-Auditlog-Batch` header of every accepted request.
    pub fn batches(&self) -> Vec<String> {
        lock(&self.state).batches.clone()
    }

    /// Requests received, accepted or not.
    pub fn requests(&self) -> u64 {
        lock(&self.state).requests
    }

    /// Requests whose signature did not verify (answered 401).
    pub fn bad_signatures(&self) -> u64 {
        lock(&self.state).bad_signatures
    }

    /// Requests whose timestamp was too old or in the future (answered 401).
    pub fn stale(&self) -> u64 {
        lock(&self.state).stale
    }

    /// Answers the next `count` requests with `status`, recording nothing of them.
    pub fn fail_next(&self, count: u64, status: u16) {
        let mut state = lock(&self.state);
        state.failures_left = count;
        state.failure_status = status;
    }

    /// Failures still to answer.
    pub fn failures_left(&self) -> u64 {
        lock(&self.state).failures_left
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(state: &Shared) -> MutexGuard<'_, WebhookState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

async fn receive(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let mut state = lock(&state);
    state.requests += 1;
    if state.failures_left > 0 {
        state.failures_left -= 1;
        let status =
            StatusCode::from_u16(state.failure_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return (status, "failing on purpose\n");
    }
    let (Some(timestamp), Some(signature)) = (
        header(&headers, "x-auditlog-timestamp"),
        header(&headers, "x-auditlog-signature"),
    ) else {
        state.bad_signatures += 1;
        return (StatusCode::UNAUTHORIZED, "unsigned\n");
    };
    let Some(signature) = signature.strip_prefix("sha256=").and_then(hex_decode) else {
        state.bad_signatures += 1;
        return (StatusCode::UNAUTHORIZED, "malformed signature\n");
    };
    let Ok(mut mac) = Hmac::<sha2_next::Sha256>::new_from_slice(&state.secret) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "key\n");
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&body);
    if mac.verify_slice(&signature).is_err() {
        state.bad_signatures += 1;
        return (StatusCode::UNAUTHORIZED, "bad signature\n");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    match timestamp.parse::<i64>() {
        Ok(sent) if (now - sent).abs() <= MAX_AGE_SECS => {}
        _ => {
            state.stale += 1;
            return (StatusCode::UNAUTHORIZED, "stale\n");
        }
    }
    let mut lines = Vec::new();
    for line in body
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
    {
        match serde_json::from_slice(line) {
            Ok(value) => lines.push(value),
            Err(_) => return (StatusCode::BAD_REQUEST, "a line is not JSON\n"),
        }
    }
    state.lines.extend(lines);
    if let Some(batch) = header(&headers, "x-auditlog-batch") {
        state.batches.push(batch.to_owned());
    }
    (StatusCode::OK, "ok\n")
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(text.get(index..index + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_request;

    const SECRET: &str = "the receiver's test secret";

    fn signature(secret: &str, timestamp: &str, body: &str) -> String {
        let mut mac = Hmac::<sha2_next::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.{body}").as_bytes());
        let bytes = mac.finalize().into_bytes();
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("sha256={hex}")
    }

    async fn post(receiver: &WebhookReceiver, timestamp: &str, signature: &str, body: &str) -> u16 {
        http_request(
            "POST",
            receiver.address.port(),
            "/hook",
            &[
                ("x-auditlog-timestamp", timestamp),
                ("x-auditlog-signature", signature),
                ("x-auditlog-batch", "t/0/0-1"),
            ],
            body.to_owned(),
        )
        .await
        .unwrap()
        .status
        .as_u16()
    }

    #[tokio::test]
    async fn only_fresh_requests_signed_with_the_secret_are_recorded() {
        let receiver = WebhookReceiver::start(SECRET).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string();
        let body = "{\"id\":1}\n{\"id\":2}\n";
        assert_eq!(
            post(&receiver, &now, &signature(SECRET, &now, body), body).await,
            200
        );
        assert_eq!(receiver.lines().len(), 2);
        assert_eq!(receiver.batches(), ["t/0/0-1"]);
        // Another secret, another body, a timestamp the signature was not made with.
        assert_eq!(
            post(&receiver, &now, &signature("other", &now, body), body).await,
            401
        );
        assert_eq!(
            post(&receiver, &now, &signature(SECRET, &now, "{}\n"), body).await,
            401
        );
        assert_eq!(
            post(&receiver, "1", &signature(SECRET, &now, body), body).await,
            401
        );
        assert_eq!(receiver.bad_signatures(), 3);
        // Signed properly, but an hour old: a replay.
        let old = (now.parse::<i64>().unwrap() - 3600).to_string();
        assert_eq!(
            post(&receiver, &old, &signature(SECRET, &old, body), body).await,
            401
        );
        assert_eq!(receiver.stale(), 1);
        receiver.fail_next(1, 503);
        assert_eq!(
            post(&receiver, &now, &signature(SECRET, &now, body), body).await,
            503
        );
        assert_eq!(receiver.lines().len(), 2, "nothing more was recorded");
    }
}
