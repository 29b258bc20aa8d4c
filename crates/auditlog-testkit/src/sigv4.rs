//! AWS Signature Version 4, as S3-compatible servers check it: the `Authorization` header of a
//! request signed with an access key and its secret.
//!
//! Tests sign their own requests to the private S3 server ([`crate::S3Server`]) so that the
//! server's authentication is exercised as a production store's would be, without an AWS SDK.
//! The unit tests check it against the examples AWS publishes for S3.
//!
//! Only what S3 over plain HTTP needs: header signing (no presigned URLs), a payload hash the
//! caller computes (`UNSIGNED-PAYLOAD` is accepted too), paths encoded once (S3's rule, unlike
//! other AWS services, which encode twice).

use sha2::{Digest, Sha256};

/// Who signs, and for which region and service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Credentials {
    /// The access key id, sent in the clear.
    pub access_key: String,
    /// The secret key; only HMACs derived from it leave the process.
    pub secret_key: String,
    /// The signing region; S3-compatible servers take `us-east-1` unless configured otherwise.
    pub region: String,
    /// The signing service: `s3`.
    pub service: String,
}

/// One request to sign, as it goes on the wire.
#[derive(Debug, Clone, Copy)]
pub struct SigV4Request<'a> {
    /// `GET`, `PUT`, ...
    pub method: &'a str,
    /// The path, not yet percent-encoded (`/bucket/some key`).
    pub path: &'a str,
    /// The query's pairs, not yet percent-encoded; a subresource like `?lifecycle` is `("lifecycle", "")`.
    pub query: &'a [(&'a str, &'a str)],
    /// Every header to sign, `host` and `x-amz-date` and `x-amz-content-sha256` included; names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    /// The payload's SHA-256 in lower-case hex (the `x-amz-content-sha256` value).
    pub payload_sha256: &'a str,
}

/// The `Authorization` header's value for `request`, signed at `amz_date` (`YYYYMMDDTHHMMSSZ`,
/// the same value as the request's `x-amz-date` header).
pub fn sigv4_authorization(
    credentials: &SigV4Credentials,
    request: &SigV4Request<'_>,
    amz_date: &str,
) -> String {
    let date = &amz_date[..8];
    let scope = format!(
        "{date}/{}/{}/aws4_request",
        credentials.region, credentials.service
    );
    let (canonical_headers, signed_headers) = canonical_headers(request.headers);
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        uri_encode(request.path, false),
        canonical_query(request.query),
        request.payload_sha256
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    // The key is derived step by step so that a leaked signing key is valid for one day, one
    // region and one service only.
    let mut key = hmac_sha256(
        format!("AWS4{}", credentials.secret_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [
        credentials.region.as_str(),
        credentials.service.as_str(),
        "aws4_request",
    ] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={signed_headers},Signature={signature}",
        credentials.access_key
    )
}

/// Lower-case hex SHA-256 of `data`: the `x-amz-content-sha256` of a payload.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// `time` as SigV4's `x-amz-date`: `YYYYMMDDTHHMMSSZ`, UTC.
pub fn amz_date(time: std::time::SystemTime) -> String {
    let seconds = time
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a time after 1970")
        .as_secs();
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm, shifted
/// so the year starts in March and leap days fall at its end).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Names lower-cased and sorted, values trimmed with inner runs of spaces folded to one.
fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut sorted: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                value.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    sorted.sort();
    let canonical = sorted
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let signed = sorted
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    (canonical, signed)
}

/// Pairs encoded, then sorted by name and value.
fn canonical_query(query: &[(&str, &str)]) -> String {
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

/// SigV4's percent-encoding: every byte but `A-Za-z0-9-._~` as `%XX` (upper-case hex), and
/// `/` too unless it separates path segments.
pub fn uri_encode(text: &str, encode_slash: bool) -> String {
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

/// HMAC-SHA256 (RFC 2104), written out over SHA-256: the key padded to the 64-byte block, an
/// inner hash over `key ^ ipad || data`, an outer one over `key ^ opad || inner`.
fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|byte| byte ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(block.map(|byte| byte ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The examples of AWS's "Signature Calculations for the Authorization Header: Transferring
    // Payload in a Single Chunk" (Amazon S3 API reference): bucket `examplebucket`, the
    // documentation's example key pair, 24 May 2013.
    const DATE: &str = "20130524T000000Z";
    const HOST: &str = "examplebucket.s3.amazonaws.com";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn example_credentials() -> SigV4Credentials {
        SigV4Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            region: "us-east-1".into(),
            service: "s3".into(),
        }
    }

    fn signature(authorization: &str) -> &str {
        authorization
            .rsplit_once("Signature=")
            .expect("a signature")
            .1
    }

    #[test]
    fn get_object_matches_aws_example() {
        let request = SigV4Request {
            method: "GET",
            path: "/test.txt",
            query: &[],
            headers: &[
                ("Host", HOST),
                ("Range", "bytes=0-9"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", DATE),
            ],
            payload_sha256: EMPTY_SHA256,
        };
        assert_eq!(
            sigv4_authorization(&example_credentials(), &request, DATE),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn put_object_with_an_encoded_key_matches_aws_example() {
        let body = b"Welcome to Amazon S3.";
        let payload = sha256_hex(body);
        assert_eq!(
            payload,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let request = SigV4Request {
            method: "PUT",
            path: "/test$file.text",
            query: &[],
            headers: &[
                ("Host", HOST),
                ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-date", DATE),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                ("x-amz-content-sha256", &payload),
            ],
            payload_sha256: &payload,
        };
        let authorization = sigv4_authorization(&example_credentials(), &request, DATE);
        assert!(authorization.contains(
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
        ));
        assert_eq!(
            signature(&authorization),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    #[test]
    fn subresource_and_list_queries_match_aws_examples() {
        let headers = [
            ("Host", HOST),
            ("x-amz-date", DATE),
            ("x-amz-content-sha256", EMPTY_SHA256),
        ];
        let lifecycle = SigV4Request {
            method: "GET",
            path: "/",
            query: &[("lifecycle", "")],
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        assert_eq!(
            signature(&sigv4_authorization(
                &example_credentials(),
                &lifecycle,
                DATE
            )),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        );
        // Given out of order: the canonical query sorts them.
        let list = SigV4Request {
            query: &[("prefix", "J"), ("max-keys", "2")],
            ..lifecycle
        };
        assert_eq!(
            signature(&sigv4_authorization(&example_credentials(), &list, DATE)),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_with_a_key_longer_than_a_block() {
        // RFC 4231, test case 6: a 131-byte key is hashed first.
        let key = [0xaau8; 131];
        assert_eq!(
            hex(&hmac_sha256(
                &key,
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn amz_date_is_utc_basic_format() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(amz_date(UNIX_EPOCH), "19700101T000000Z");
        // 2013-05-24T00:00:00Z, the examples' date, and a leap day.
        assert_eq!(
            amz_date(UNIX_EPOCH + Duration::from_secs(1_369_353_600)),
            DATE
        );
        assert_eq!(
            amz_date(UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
            "20240229T123456Z"
        );
    }

    #[test]
    fn encoding_keeps_unreserved_bytes_and_slashes_of_paths() {
        assert_eq!(uri_encode("/a b/c~d$é", false), "/a%20b/c~d%24%C3%A9");
        assert_eq!(uri_encode("a/b+c=", true), "a%2Fb%2Bc%3D");
    }
}
