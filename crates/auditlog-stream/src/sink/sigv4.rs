//! AWS Signature Version 4 for S3: the `Authorization` header of one request, signed with an
//! access key's secret, so the archive works against any S3-compatible store without an SDK.
//!
//! ```text
//!  method, path, query, headers, payload hash ──▶ canonical request ──sha256──┐
//!  secret ─HMAC▶ date ─HMAC▶ region ─HMAC▶ "s3" ─HMAC▶ "aws4_request" ──HMAC(string to sign)
//! ```
//!
//! S3 encodes a path once (other AWS services encode twice); every header given is signed.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::signature::hmac_sha256;

/// A key pair and the region it signs for.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
    /// Temporary credentials' token (`x-amz-security-token`), when there is one.
    pub(crate) session_token: Option<String>,
    pub(crate) region: String,
}

impl std::fmt::Debug for Credentials {
    // Neither the secret nor the token reaches a log line.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// One request as it goes on the wire; path and query not yet percent-encoded.
pub(crate) struct Signable<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: &'a [(&'a str, &'a str)],
    /// Every header to sign (`host`, `x-amz-date` and `x-amz-content-sha256` among them).
    pub(crate) headers: &'a [(&'a str, &'a str)],
    pub(crate) payload_sha256: &'a str,
}

/// `time` as `x-amz-date`: `YYYYMMDDTHHMMSSZ`.
pub(crate) fn amz_date(time: OffsetDateTime) -> String {
    let time = time.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

/// The `Authorization` value for `request`, signed at `amz_date`.
pub(crate) fn authorization(
    credentials: &Credentials,
    request: &Signable<'_>,
    amz_date: &str,
) -> String {
    let date = &amz_date[..8];
    let scope = format!("{date}/{}/s3/aws4_request", credentials.region);
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                value.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    headers.sort();
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        uri_encode(request.path, false),
        canonical_query(request.query),
        request.payload_sha256
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    // Derived step by step: a leaked signing key is good for one day and region only.
    let mut key = hmac_sha256(
        format!("AWS4{}", credentials.secret_key).as_bytes(),
        &[date.as_bytes()],
    );
    for part in [credentials.region.as_str(), "s3", "aws4_request"] {
        key = hmac_sha256(&key, &[part.as_bytes()]);
    }
    let signature = hex::encode(hmac_sha256(&key, &[string_to_sign.as_bytes()]));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={signed_headers},Signature={signature}",
        credentials.access_key
    )
}

/// The query as sent and as signed: pairs encoded, sorted.
pub(crate) fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = query
        .iter()
        .map(|(name, value)| (uri_encode(name, true), uri_encode(value, true)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Every byte but `A-Za-z0-9-._~` as `%XX`, and `/` too unless it separates segments.
pub(crate) fn uri_encode(text: &str, encode_slash: bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                encoded.push(char::from(byte));
            }
            b'/' if !encode_slash => encoded.push('/'),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    // AWS's published S3 example ("Signature Calculations for the Authorization Header:
    // Transferring Payload in a Single Chunk"), GET with a Range header.
    #[test]
    fn matches_the_published_s3_get_example() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let date = "20130524T000000Z";
        let credentials = Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            region: "us-east-1".into(),
        };
        let request = Signable {
            method: "GET",
            path: "/test.txt",
            query: &[],
            headers: &[
                ("Host", "examplebucket.s3.amazonaws.com"),
                ("Range", "bytes=0-9"),
                ("x-amz-content-sha256", empty),
                ("x-amz-date", date),
            ],
            payload_sha256: empty,
        };
        assert!(authorization(&credentials, &request, date).ends_with(
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
                 Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        ));
    }

    #[test]
    fn amz_date_is_utc_and_compact() {
        let time = OffsetDateTime::from_unix_timestamp(1_369_353_600).unwrap();
        assert_eq!(amz_date(time), "20130524T000000Z");
    }
}
