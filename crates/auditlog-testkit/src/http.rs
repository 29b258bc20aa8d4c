//! The one HTTP GET of tests and benches: against 127.0.0.1, with an optional bearer token,
//! answering status, headers and body.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{HeaderMap, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::Error;

/// A GET client for servers on 127.0.0.1. Clones share one connection pool, so a bench that
/// keeps one client times requests, not TCP handshakes; [`http_get`] uses a fresh one.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Empty<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client with an empty connection pool.
    pub fn new() -> Self {
        Self {
            inner: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `GET path_and_query` on `port`, with `Authorization: Bearer <token>` when given; the
    /// body read whole.
    pub async fn get(
        &self,
        port: u16,
        path_and_query: &str,
        token: Option<&str>,
    ) -> Result<HttpResponse, Error> {
        let response = self.send(port, path_and_query, token, &[]).await?;
        read_whole(path_and_query, response).await
    }

    /// [`HttpClient::get`] with request headers of the caller's (another scheme, another
    /// header) instead of a token.
    pub async fn get_with_headers(
        &self,
        port: u16,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, Error> {
        let response = self.send(port, path_and_query, None, headers).await?;
        read_whole(path_and_query, response).await
    }

    /// The GET itself, its body still to read: for bodies too large to hold (exports).
    pub async fn send(
        &self,
        port: u16,
        path_and_query: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<hyper::Response<Incoming>, Error> {
        let mut request = hyper::Request::get(format!("http://127.0.0.1:{port}{path_and_query}"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Empty::new())
            .map_err(|source| Error::InvalidRequest {
                path: path_and_query.to_owned(),
                source,
            })?;
        self.inner
            .request(request)
            .await
            .map_err(|source| Error::Request {
                path: path_and_query.to_owned(),
                source,
            })
    }
}

async fn read_whole(
    path_and_query: &str,
    response: hyper::Response<Incoming>,
) -> Result<HttpResponse, Error> {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|source| Error::Body {
            path: path_and_query.to_owned(),
            source,
        })?
        .to_bytes();
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// [`HttpClient::get`] on a connection of its own (a probe, a server under attack).
pub async fn http_get(
    port: u16,
    path_and_query: &str,
    token: Option<&str>,
) -> Result<HttpResponse, Error> {
    HttpClient::new().get(port, path_and_query, token).await
}

/// A response, its body read whole.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!("not json ({error}): {}", self.text());
        })
    }
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
