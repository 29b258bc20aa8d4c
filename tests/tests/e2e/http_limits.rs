//! Whole-system test of `auditlog serve` under a slow-connection attack: hundreds of
//! connections that send nothing, or a request without its final CRLF, from a client
//! without a token, against a server whose open-file limit they exceed.
//!
//! The server must keep answering `/healthz` (on the API port, from its reserved
//! connections, and on `--ops-listen`), shed what it cannot serve instead of failing in
//! `accept`, close the attacking connections by its timeouts, and then serve an auditor's
//! page again.

use std::time::{Duration, Instant};

use auditlog_e2e::http_get;
use auditlog_e2e::pipeline::{events, free_port, metric_sum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::query_support::{ApiServer, TestToken, load_events, migrated_database};

const AUDITOR: &str = "ann-secret";

/// The server's open-file limit: the attack below needs more descriptors than this.
const OPEN_FILES: u32 = 256;

/// Attacking connections: half silent, half with an unfinished request head.
const ATTACKERS: usize = 400;

/// Events in the database, so "gets its page" can be checked row for row.
const EVENTS: usize = 40;

/// One `GET` on a fresh connection: status and body, or `None` if no answer came within
/// `patience` (refused, reset, or never accepted).
async fn get(
    port: u16,
    path: &str,
    token: Option<&str>,
    patience: Duration,
) -> Option<(u16, String)> {
    let response = tokio::time::timeout(patience, http_get(port, path, token))
        .await
        .ok()?
        .ok()?;
    Some((response.status.as_u16(), response.text()))
}

/// Retries `get` until it answers `200` or `within` has passed; returns the last answer.
async fn get_200(
    port: u16,
    path: &str,
    token: Option<&str>,
    within: Duration,
) -> Option<(u16, String)> {
    let deadline = Instant::now() + within;
    loop {
        let answer = get(port, path, token, Duration::from_secs(2)).await;
        if matches!(&answer, Some((200, _))) || Instant::now() >= deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_idle_connections_do_not_starve_probes_or_auditors() {
    let (client, database) = migrated_database("http_limits").await;
    load_events(&client, &events(12, EVENTS)).await;
    let ops_port = free_port();
    // The limits come as environment variables: a server that does not know them still
    // starts, and then shows what the attack does to it.
    let mut api = ApiServer::start_command(
        &database,
        &[TestToken::new("ann", AUDITOR, "auditor")],
        |command| {
            command
                .env("AUDITLOG_API_OPS_LISTEN", format!("127.0.0.1:{ops_port}"))
                .env("AUDITLOG_API_HEADER_READ_TIMEOUT_SECS", "3")
                .env("AUDITLOG_API_IDLE_TIMEOUT_SECS", "5")
                .open_files_limit(OPEN_FILES)
                .ops_port(ops_port)
        },
    )
    .await;
    let (port, server) = (api.port, &mut api.process);

    // The attack: more connections than the server has descriptors, none of them ever
    // completing a request. A server that stops accepting lets the kernel's queue fill,
    // and then connecting times out: that is counted, and judged after the probes.
    let mut attackers = Vec::with_capacity(ATTACKERS);
    let mut never_connected = 0;
    for index in 0..ATTACKERS {
        let connect = TcpStream::connect(("127.0.0.1", port));
        let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(2), connect).await else {
            never_connected = ATTACKERS - index;
            break;
        };
        if index % 2 == 1 {
            // The server may already have shed this one; that is not the test's business.
            let _ = stream
                .write_all(b"GET /api/v2/audit HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: 1\r\n")
                .await;
        }
        attackers.push(stream);
    }

    let healthz = get_200(port, "/healthz", None, Duration::from_secs(10)).await;
    assert_eq!(
        healthz,
        Some((200, "ok\n".to_owned())),
        "/healthz on the API port did not answer under attack; log:\n{}",
        server.log()
    );
    let ops_healthz = get(ops_port, "/healthz", None, Duration::from_secs(5)).await;
    assert_eq!(
        ops_healthz,
        Some((200, "ok\n".to_owned())),
        "/healthz on the ops listener did not answer under attack"
    );

    let page = get_200(
        port,
        "/api/v2/audit?limit=100",
        Some(AUDITOR),
        Duration::from_secs(30),
    )
    .await;
    let Some((200, body)) = page else {
        panic!(
            "the auditor never got a page: {page:?}; log:\n{}",
            server.log()
        );
    };
    let page: serde_json::Value = serde_json::from_str(&body).expect("a JSON page");
    assert_eq!(page["count"], EVENTS);
    assert_eq!(page["audit_logs"].as_array().unwrap().len(), EVENTS);

    assert_eq!(
        never_connected, 0,
        "the server stopped accepting: {never_connected} connections could not even connect"
    );
    // Every attacking connection was closed by the server (timed out, or shed at once).
    for (index, stream) in attackers.iter_mut().enumerate() {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut rest))
            .await
            .is_ok();
        assert!(closed, "attacking connection {index} is still open");
    }

    // The metrics say what happened: some were shed, some timed out, none failed accept.
    let metrics = get_200(ops_port, "/metrics", None, Duration::from_secs(10))
        .await
        .expect("metrics")
        .1;
    let shed = metric_sum(
        &metrics,
        r#"auditlog_http_connections_total{listener="api",outcome="shed"}"#,
    );
    let header_timeouts = metric_sum(
        &metrics,
        r#"auditlog_http_timeouts_total{listener="api",reason="header_read"}"#,
    );
    let idle_timeouts = metric_sum(
        &metrics,
        r#"auditlog_http_timeouts_total{listener="api",reason="idle"}"#,
    );
    let accept_errors = metric_sum(
        &metrics,
        r#"auditlog_http_accept_errors_total{listener="api"}"#,
    );
    assert!(shed > 0.0, "nothing was shed:\n{metrics}");
    assert!(
        header_timeouts > 0.0,
        "no header read timed out:\n{metrics}"
    );
    assert!(
        idle_timeouts > 0.0,
        "no idle connection timed out:\n{metrics}"
    );
    assert_eq!(accept_errors, 0.0, "accept failed:\n{}", server.log());
    assert!(server.is_running());
    server.terminate(Duration::from_secs(10));
}
