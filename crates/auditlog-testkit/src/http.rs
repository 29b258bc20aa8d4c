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

/// Percent-encodes a query-string value (everything but RFC 3986's unreserved characters).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_unreserved_characters_pass_unencoded() {
        assert_eq!(
            super::percent_encode("action:delete username:a+b/ü~"),
            "action%3Adelete%20username%3Aa%2Bb%2F%C3%BC~"
        );
    }
}
