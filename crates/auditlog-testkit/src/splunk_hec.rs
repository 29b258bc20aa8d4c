//! A Splunk HTTP Event Collector that tests can run: no Splunk server can be had here, so
//! this receiver implements the protocol the `splunk_hec` sink speaks, as Splunk documents
//! it, and records what arrived.
//!
//! ```text
//!  POST /services/collector/event   Authorization: Splunk <token>   (401 no token, 403 wrong)
//!       body: JSON objects back to back, each with an "event" field    (400 code 5, 6, 12, 13)
//!       ◀── {"text":"Success","code":0}                 acknowledgement off
//!       ◀── {"text":"Success","code":0,"ackId":N}       on: X-Splunk-Request-Channel needed
//!  POST /services/collector/ack      {"acks":[N]} ◀── {"acks":{"N":true|false}}
//! ```
//!
//! An acknowledgement turns true only at the second poll of an id, so a sender must poll.
//! [`SplunkHecReceiver::set_unavailable`] answers 503 "Server is busy" (code 9), as Splunk
//! does when its queues are full.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

const CHANNEL_HEADER: &str = "x-splunk-request-channel";

#[derive(Debug, Default)]
struct HecState {
    token: String,
    ack: bool,
    unavailable: bool,
    /// Every event object accepted, in arrival order.
    events: Vec<Value>,
    requests: u64,
    refused: u64,
    /// Per channel: the next ack id, and each id's polls so far.
    channels: HashMap<String, (u64, HashMap<u64, u32>)>,
    ack_polls: u64,
}

/// A running HEC receiver on a free local port; stops when dropped.
#[derive(Debug)]
pub struct SplunkHecReceiver {
    address: SocketAddr,
    state: Arc<Mutex<HecState>>,
    task: tokio::task::JoinHandle<()>,
}

type Shared = Arc<Mutex<HecState>>;

impl SplunkHecReceiver {
    /// Starts one that accepts `token`, with indexer acknowledgement on or off.
    pub async fn start(token: &str, ack: bool) -> Self {
        let state = Arc::new(Mutex::new(HecState {
            token: token.to_owned(),
            ack,
            ..HecState::default()
        }));
        let router = Router::new()
            .route("/services/collector/event", post(event))
            .route("/services/collector", post(event))
            .route("/services/collector/ack", post(ack_poll))
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

    /// `http://127.0.0.1:PORT`, the sink's `url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every event object accepted (with `time`, `source`, ..., `event`), in arrival order.
    pub fn events(&self) -> Vec<Value> {
        lock(&self.state).events.clone()
    }

    /// Requests to the event endpoint, accepted or not.
    pub fn requests(&self) -> u64 {
        lock(&self.state).requests
    }

    /// Requests to the event endpoint that were refused (any non-200).
    pub fn refused(&self) -> u64 {
        lock(&self.state).refused
    }

    /// Polls of the acknowledgement endpoint.
    pub fn ack_polls(&self) -> u64 {
        lock(&self.state).ack_polls
    }

    /// While true, every request is answered 503 "Server is busy".
    pub fn set_unavailable(&self, unavailable: bool) {
        lock(&self.state).unavailable = unavailable;
    }
}

impl Drop for SplunkHecReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(state: &Shared) -> MutexGuard<'_, HecState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn answer(status: StatusCode, body: Value) -> (StatusCode, String) {
    (status, body.to_string())
}

/// Checks the token as Splunk does; `Err` is the answer.
fn authorize(state: &HecState, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
    let Some(value) = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
    else {
        return Err(answer(
            StatusCode::UNAUTHORIZED,
            json!({"text": "Token is required", "code": 2}),
        ));
    };
    match value.strip_prefix("Splunk ") {
        Some(token) if token == state.token => Ok(()),
        _ => Err(answer(
            StatusCode::FORBIDDEN,
            json!({"text": "Invalid token", "code": 4}),
        )),
    }
}

fn channel(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CHANNEL_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

async fn event(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let mut state = lock(&state);
    state.requests += 1;
    let result = accept(&mut state, &headers, &body);
    if result.0 != StatusCode::OK {
        state.refused += 1;
    }
    result
}

fn accept(state: &mut HecState, headers: &HeaderMap, body: &[u8]) -> (StatusCode, String) {
    if state.unavailable {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"text": "Server is busy", "code": 9}),
        );
    }
    if let Err(refusal) = authorize(state, headers) {
        return refusal;
    }
    let channel = channel(headers);
    if state.ack && channel.is_none() {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"text": "Data channel is missing", "code": 10}),
        );
    }
    let mut events = Vec::new();
    for (number, item) in serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .enumerate()
    {
        let Ok(item) = item else {
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"text": "Invalid data format", "code": 6, "invalid-event-number": number}),
            );
        };
        match item.get("event") {
            None => {
                return answer(
                    StatusCode::BAD_REQUEST,
                    json!({"text": "Event field is required", "code": 12, "invalid-event-number": number}),
                );
            }
            Some(Value::Null) => {
                return answer(
                    StatusCode::BAD_REQUEST,
                    json!({"text": "Event field cannot be blank", "code": 13, "invalid-event-number": number}),
                );
            }
            Some(Value::String(text)) if text.is_empty() => {
                return answer(
                    StatusCode::BAD_REQUEST,
                    json!({"text": "Event field cannot be blank", "code": 13, "invalid-event-number": number}),
                );
            }
            Some(_) => events.push(item),
        }
    }
    if events.is_empty() {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"text": "No data", "code": 5}),
        );
    }
    state.events.extend(events);
    match (state.ack, channel) {
        (true, Some(channel)) => {
            let (next, polls) = state.channels.entry(channel).or_default();
            let ack_id = *next;
            *next += 1;
            polls.insert(ack_id, 0);
            answer(
                StatusCode::OK,
                json!({"text": "Success", "code": 0, "ackId": ack_id}),
            )
        }
        _ => answer(StatusCode::OK, json!({"text": "Success", "code": 0})),
    }
}

async fn ack_poll(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let mut state = lock(&state);
    if state.unavailable {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"text": "Server is busy", "code": 9}),
        );
    }
    if let Err(refusal) = authorize(&state, &headers) {
        return refusal;
    }
    if !state.ack {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"text": "ACK is disabled", "code": 14}),
        );
    }
    let Some(channel) = channel(&headers) else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"text": "Data channel is missing", "code": 10}),
        );
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"text": "Invalid data format", "code": 6}),
        );
    };
    let Some(ids) = request["acks"].as_array() else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"text": "Invalid data format", "code": 6}),
        );
    };
    state.ack_polls += 1;
    let mut statuses = serde_json::Map::new();
    let known = state.channels.get_mut(&channel).map(|(_, polls)| polls);
    let mut known = known;
    for id in ids.iter().filter_map(Value::as_u64) {
        let indexed = match known.as_deref_mut().and_then(|polls| polls.get_mut(&id)) {
            Some(count) => {
                *count += 1;
                *count >= 2
            }
            None => false,
        };
        statuses.insert(id.to_string(), Value::Bool(indexed));
    }
    answer(StatusCode::OK, json!({ "acks": statuses }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_request;

    async fn post(
        receiver: &SplunkHecReceiver,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Value) {
        let response = http_request(
            "POST",
            receiver.address.port(),
            path,
            headers,
            body.to_owned(),
        )
        .await
        .unwrap();
        let value = serde_json::from_str(&response.text()).unwrap_or(Value::Null);
        (response.status.as_u16(), value)
    }

    const AUTH: (&str, &str) = ("authorization", "Splunk t0ken");
    const CHANNEL: (&str, &str) = (
        "x-splunk-request-channel",
        "2c6a1f1e-0000-4000-8000-000000000001",
    );

    #[tokio::test]
    async fn tokens_and_event_validations_answer_as_splunk_does() {
        let receiver = SplunkHecReceiver::start("t0ken", false).await;
        let event = "/services/collector/event";
        assert_eq!(post(&receiver, event, &[], "{}").await.1["code"], 2);
        let wrong = post(&receiver, event, &[("authorization", "Splunk nope")], "{}").await;
        assert_eq!((wrong.0, wrong.1["code"].clone()), (403, json!(4)));
        assert_eq!(post(&receiver, event, &[AUTH], "").await.1["code"], 5);
        let missing = post(&receiver, event, &[AUTH], r#"{"event":1} {"time":2}"#).await;
        assert_eq!(
            missing.1,
            json!({"text": "Event field is required", "code": 12, "invalid-event-number": 1})
        );
        assert_eq!(
            post(&receiver, event, &[AUTH], r#"{"event":""}"#).await.1["code"],
            13
        );
        assert_eq!(post(&receiver, event, &[AUTH], "{nope").await.1["code"], 6);
        assert!(
            receiver.events().is_empty(),
            "a refused request stores nothing"
        );
        let ok = post(
            &receiver,
            event,
            &[AUTH],
            r#"{"event":{"a":1}} {"event":"b"}"#,
        )
        .await;
        assert_eq!(ok, (200, json!({"text": "Success", "code": 0})));
        assert_eq!(receiver.events().len(), 2);
        receiver.set_unavailable(true);
        assert_eq!(
            post(&receiver, event, &[AUTH], r#"{"event":1}"#).await.0,
            503
        );
        assert_eq!((receiver.requests(), receiver.refused()), (8, 7));
    }

    #[tokio::test]
    async fn acknowledgements_need_a_channel_and_come_true_on_the_second_poll() {
        let receiver = SplunkHecReceiver::start("t0ken", true).await;
        let event = "/services/collector/event";
        let ack = "/services/collector/ack";
        let without = post(&receiver, event, &[AUTH], r#"{"event":1}"#).await;
        assert_eq!((without.0, without.1["code"].clone()), (400, json!(10)));
        let first = post(&receiver, event, &[AUTH, CHANNEL], r#"{"event":1}"#).await;
        let second = post(&receiver, event, &[AUTH, CHANNEL], r#"{"event":2}"#).await;
        assert_eq!(
            (first.1["ackId"].clone(), second.1["ackId"].clone()),
            (json!(0), json!(1))
        );
        let polls = r#"{"acks":[0,1,7]}"#;
        let once = post(&receiver, ack, &[AUTH, CHANNEL], polls).await;
        assert_eq!(
            once.1,
            json!({"acks": {"0": false, "1": false, "7": false}})
        );
        let twice = post(&receiver, ack, &[AUTH, CHANNEL], polls).await;
        assert_eq!(twice.1, json!({"acks": {"0": true, "1": true, "7": false}}));
        // Ack ids belong to their channel.
        let other = ("x-splunk-request-channel", "another");
        let elsewhere = post(&receiver, ack, &[AUTH, other], r#"{"acks":[0]}"#).await;
        assert_eq!(elsewhere.1, json!({"acks": {"0": false}}));
        assert_eq!(receiver.ack_polls(), 3);
    }
}
