//! The accept loop on a loopback socket: what a slow, silent or greedy client gets.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

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
