//! One HTTP request of any method, with a body, to a server on 127.0.0.1: what the S3 and
//! OpenSearch fixtures send (`PUT`, `POST _bulk`, ...), where [`crate::HttpClient`] only GETs.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::{Error, HttpResponse};

/// `method path_and_query` on `port` with `headers` and `body`, the answer's body read whole;
/// an error only when no answer came (refused, reset), never for an error status.
pub async fn http_request(
    method: &str,
    port: u16,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<HttpResponse, Error> {
    let what = || format!("{method} {path_and_query}");
    let method = Method::from_bytes(method.as_bytes()).map_err(|error| Error::Exchange {
        what: what(),
        reason: error.to_string(),
    })?;
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path_and_query}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(body.into()))
        .map_err(|error| Error::Exchange {
            what: what(),
            reason: error.to_string(),
        })?;
    let response = Client::builder(TokioExecutor::new())
        .build_http()
        .request(request)
        .await
        .map_err(|error| Error::Exchange {
            what: what(),
            reason: error.to_string(),
        })?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|error| Error::Exchange {
            what: what(),
            reason: format!("reading the body: {error}"),
        })?
        .to_bytes();
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}
