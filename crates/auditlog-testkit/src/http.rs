//! A minimal HTTP GET against 127.0.0.1, for ops endpoints and pings (no client dependency).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The whole response (status line, headers and body) to `GET path`, or `None` when the
/// connection fails.
pub async fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    Some(String::from_utf8_lossy(&response).into_owned())
}
