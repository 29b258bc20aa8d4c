//! The HTTP client the HTTP sinks share: one connection pool per sink, `http` or `https`
//! (rustls, Mozilla's roots plus a sink's own `ca_file`), a deadline per request, and the
//! status classes every HTTP destination is judged by.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::header::{HeaderName, HeaderValue};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::StreamError;
use crate::sink::{Batch, DeliveryError};

/// An answer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

impl Answer {
    /// The body for a log line: at most 300 characters of it.
    pub(crate) fn body_excerpt(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(300)
            .collect()
    }

    /// `Ok` for 2xx; 408, 429 and 5xx are transient, any other status a refusal.
    pub(crate) fn check(&self, what: &str) -> Result<(), DeliveryError> {
        match self.status {
            200..=299 => Ok(()),
            408 | 429 | 500..=599 => Err(DeliveryError::transient(format!(
                "{what}: HTTP {}: {}",
                self.status,
                self.body_excerpt()
            ))),
            _ => Err(DeliveryError::rejected(format!(
                "{what}: HTTP {}: {}",
                self.status,
                self.body_excerpt()
            ))),
        }
    }

    /// As [`Self::check`] for the request that carried `batch`, but 400, 413 and 422 say
    /// the request holds something the destination will not take:
    /// [`crate::FailureClass::Invalid`], which the engine narrows down to the events.
    pub(crate) fn check_content(&self, what: &str, batch: &Batch) -> Result<(), DeliveryError> {
        match self.status {
            400 | 413 | 422 => Err(DeliveryError::invalid(
                batch,
                &format!("http_{}", self.status),
                format!("{what}: HTTP {}: {}", self.status, self.body_excerpt()),
            )),
            _ => self.check(what),
        }
    }
}

/// A pooled HTTP/1.1 client, plain or TLS by the URL's scheme, with a per-request deadline.
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    pub(crate) fn new(timeout: Duration, tls: &TlsSettings) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls.config.as_ref().clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Self {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            timeout,
        }
    }

    /// POSTs `body`; any failure to get a whole answer within the deadline is transient.
    pub(crate) async fn post(
        &self,
        uri: &Uri,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Answer, DeliveryError> {
        self.send(hyper::Method::POST, uri, headers, body).await
    }

    /// GETs `uri`, as [`Self::post`].
    pub(crate) async fn get(
        &self,
        uri: &Uri,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Answer, DeliveryError> {
        self.send(hyper::Method::GET, uri, headers, Bytes::new())
            .await
    }

    async fn send(
        &self,
        method: hyper::Method,
        uri: &Uri,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Answer, DeliveryError> {
        let mut request = hyper::Request::builder()
            .method(method.clone())
            .uri(uri.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|error| DeliveryError::rejected(format!("building the request: {error}")))?;
        let exchange = async {
            let response =
                self.client.request(request).await.map_err(|error| {
                    DeliveryError::transient(format!("{method} {uri}: {error:#}"))
                })?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| {
                    DeliveryError::transient(format!("{method} {uri}: reading the answer: {error}"))
                })?
                .to_bytes();
            Ok(Answer { status, body })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(DeliveryError::transient(format!(
                "{method} {uri}: no answer within {:?}",
                self.timeout
            ))),
        }
    }
}

/// Parses a destination URL: `http://` or `https://`, with a host.
pub(crate) fn parse_url(sink: &str, key: &str, text: &str) -> Result<Uri, StreamError> {
    let uri: Uri = text
        .parse()
        .map_err(|error| StreamError::config(sink, format!("{key} {text:?}: {error}")))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err(StreamError::config(
            sink,
            format!("{key} {text:?}: expected an http:// or https:// URL with a host"),
        )),
    }
}

/// How an HTTP sink verifies servers: Mozilla's root certificates, plus those of a
/// configured `ca_file` (a private CA's PEM bundle).
#[derive(Debug, Clone)]
pub struct TlsSettings {
    config: Arc<rustls::ClientConfig>,
}

impl TlsSettings {
    /// The rustls configuration, for a sink that builds its own client (the S3 archive).
    pub(crate) fn client_config(&self) -> rustls::ClientConfig {
        self.config.as_ref().clone()
    }

    /// The roots, with the PEM certificates of `ca_file` added when given.
    pub(crate) fn new(sink: &str, ca_file: Option<&Path>) -> Result<Self, StreamError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = ca_file {
            let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certificates| certificates.collect())
                .map_err(|error| {
                    StreamError::config(sink, format!("ca_file {}: {error}", path.display()))
                })?;
            if certificates.is_empty() {
                return Err(StreamError::config(
                    sink,
                    format!("ca_file {}: no PEM certificate in it", path.display()),
                ));
            }
            for certificate in certificates {
                roots.add(certificate).map_err(|error| {
                    StreamError::config(sink, format!("ca_file {}: {error}", path.display()))
                })?;
            }
        }
        // The provider is named, not taken from the process default, so that another
        // crate's choice of provider cannot change or break this one. ring is deprecated
        // for its lack of post-quantum key exchange; aws-lc-rs would build a C library with
        // cmake for minutes, and ring's X25519 and P-256 are what servers speak today.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| StreamError::config(sink, format!("tls: {error}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

/// A header from configuration, checked.
pub(crate) fn header(
    sink: &str,
    name: &str,
    value: &str,
) -> Result<(HeaderName, HeaderValue), StreamError> {
    let header_name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| StreamError::config(sink, format!("header name {name:?} is not valid")))?;
    let header_value = HeaderValue::from_str(value).map_err(|_| {
        StreamError::config(
            sink,
            format!("header {name:?} has a value that is not valid"),
        )
    })?;
    Ok((header_name, header_value))
}

#[cfg(test)]
#[path = "https_tests.rs"]
mod tests;
