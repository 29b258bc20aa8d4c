//! HTTPS against a TLS server of the test's own, whose certificate a private CA signed: the
//! sink trusts it through `ca_file` and refuses it without.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::format::Format;
use crate::sink::webhook::{WebhookConfig, WebhookSink};
use crate::sink::{Batch, FailureClass, Record, Sink};

struct Pki {
    ca_pem: String,
    leaf: CertificateDer<'static>,
    leaf_key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "auditlog test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf: leaf.der().clone(),
        leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

/// Serves TLS on a free port: each request's body goes to the channel, the answer is 200.
async fn tls_server(pki: &Pki) -> (u16, mpsc::UnboundedReceiver<Vec<u8>>) {
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf.clone()], pki.leaf_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (bodies, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buffer = [0_u8; 4096];
                // One request: headers, then Content-Length bytes of body.
                loop {
                    let Ok(read) = stream.read(&mut buffer).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..read]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text[..end]
                            .lines()
                            .find_map(|line| {
                                let (name, value) = line.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            let _ = bodies.send(request[end + 4..end + 4 + length].to_vec());
                            let _ = stream
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                                .await;
                            let _ = stream.shutdown().await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (port, received)
}

fn batch() -> Batch {
    Batch {
        topic: "audit".into(),
        partition: 0,
        first_offset: 0,
        last_offset: 0,
        records: vec![Record {
            offset: 0,
            id: uuid::Uuid::from_u128(7),
            time: time::OffsetDateTime::UNIX_EPOCH,
            json: br#"{"id":"7"}"#.to_vec(),
        }],
        filtered: 0,
        malformed: 0,
        format: Format::Coder,
    }
}

fn webhook(port: u16, ca_file: Option<&std::path::Path>) -> WebhookSink {
    let mut text =
        format!("url = \"https://127.0.0.1:{port}/hook\"\nsecret = \"sixteen bytes at least\"\n");
    if let Some(path) = ca_file {
        text.push_str(&format!("ca_file = {:?}\n", path.display().to_string()));
    }
    let settings: toml::Value = toml::from_str(&text).unwrap();
    WebhookSink::new(WebhookConfig::from_settings("tls", settings).unwrap())
}

#[tokio::test]
async fn https_delivers_to_a_server_the_ca_file_vouches_for_and_to_no_other() {
    let pki = pki();
    let (port, mut received) = tls_server(&pki).await;
    let ca_file = std::env::temp_dir().join(format!("auditlog-test-ca-{port}.pem"));
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();

    webhook(port, Some(&ca_file))
        .deliver(&batch())
        .await
        .unwrap();
    assert_eq!(received.recv().await.unwrap(), b"{\"id\":\"7\"}\n");

    // Mozilla's roots alone do not know the private CA: the handshake fails, and the
    // failure is one a retry may outlive (a certificate being rotated), not a refusal.
    let error = webhook(port, None).deliver(&batch()).await.unwrap_err();
    assert_eq!(error.class, FailureClass::Transient, "{error}");
    assert!(
        received.try_recv().is_err(),
        "nothing arrived without trust"
    );
    std::fs::remove_file(&ca_file).unwrap();
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let path = std::env::temp_dir().join(format!("auditlog-test-empty-{}.pem", std::process::id()));
    std::fs::write(&path, "not a certificate\n").unwrap();
    let text = format!(
        "url = \"https://127.0.0.1:1/hook\"\nsecret = \"sixteen bytes at least\"\nca_file = {:?}\n",
        path.display().to_string()
    );
    let error = WebhookConfig::from_settings("tls", toml::from_str(&text).unwrap()).unwrap_err();
    assert!(error.to_string().contains("no PEM certificate"), "{error}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn statuses_that_refuse_the_content_name_every_event_of_the_request() {
    let batch = Batch {
        topic: "t".into(),
        partition: 1,
        first_offset: 7,
        last_offset: 8,
        records: (7..9)
            .map(|offset| Record {
                offset,
                id: uuid::Uuid::from_u128(offset as u128),
                time: time::OffsetDateTime::UNIX_EPOCH,
                json: b"{}".to_vec(),
            })
            .collect(),
        filtered: 0,
        malformed: 0,
        format: Format::Coder,
    };
    let answer = |status: u16| super::Answer {
        status,
        body: bytes::Bytes::from_static(b"no"),
    };
    for status in [400, 413, 422] {
        let error = answer(status).check_content("webhook", &batch).unwrap_err();
        assert_eq!(error.class, FailureClass::Invalid, "{status}");
        let offsets: Vec<i64> = error.rejected.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [7, 8]);
        assert_eq!(error.rejected[0].kind, format!("http_{status}"));
    }
    for (status, class) in [
        (401, FailureClass::Rejected),
        (404, FailureClass::Rejected),
        (429, FailureClass::Transient),
        (502, FailureClass::Transient),
    ] {
        let error = answer(status).check_content("webhook", &batch).unwrap_err();
        assert_eq!(error.class, class, "{status}");
        assert!(error.rejected.is_empty());
    }
    assert!(answer(204).check_content("webhook", &batch).is_ok());
}
