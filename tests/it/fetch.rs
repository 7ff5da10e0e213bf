//! Key fetches through a private CA and an egress proxy (the `fetch:` block), through the real
//! server: a loopback HTTPS identity provider whose certificate is signed by a CA made in the
//! test (rcgen), and a loopback HTTP CONNECT proxy that counts what it tunnels.

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::{InProcess, TestKey, claims, judge, jwks, now};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const AUDIENCE: &str = "api://orders";

/// A CA, and a certificate for 127.0.0.1 it signed: (CA PEM, leaf chain, leaf key).
fn private_ca() -> (
    String,
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tokengate test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let mut leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    leaf_params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    let leaf = leaf_params.signed_by(&leaf_key, &ca).expect("leaf");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    (ca.pem(), leaf.der().clone(), key)
}

/// An HTTPS identity provider on 127.0.0.1: discovery (issuer `https://127.0.0.1:PORT`) and a
/// JWKS, HTTP/1.1, one request per connection.
async fn https_idp(jwks: Value) -> (SocketAddr, String) {
    let (ca, leaf, key) = private_ca();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![leaf], key)
        .expect("tls config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let issuer = format!("https://{address}");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, jwks, issuer) = (acceptor.clone(), jwks.clone(), issuer.clone());
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(socket).await else {
                    return;
                };
                let mut request = vec![0; 4096];
                let read = stream.read(&mut request).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&request[..read]);
                let body = if request.starts_with("GET /.well-known/openid-configuration") {
                    json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}).to_string()
                } else {
                    jwks.to_string()
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (address, ca)
}

/// An HTTP CONNECT proxy on 127.0.0.1 that tunnels to loopback targets and counts tunnels.
async fn connect_proxy() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let tunnels = Arc::new(AtomicUsize::new(0));
    let counted = tunnels.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let Some(target) = head
                    .strip_prefix("CONNECT ")
                    .and_then(|rest| rest.split(' ').next())
                    .filter(|target| target.starts_with("127.0.0.1:"))
                else {
                    let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (address, tunnels)
}

#[tokio::test]
async fn keys_are_fetched_through_a_private_ca_and_a_connect_proxy() {
    let key = TestKey::rsa_a();
    let (idp, ca) = https_idp(jwks(&[&key])).await;
    let (proxy, tunnels) = connect_proxy().await;
    let tenant = |id: &str, fetch: &str| {
        format!(
            "  - id: {id}\n    discovery_url: \"https://{idp}/.well-known/openid-configuration\"\n    audiences: [\"{AUDIENCE}\"]\n    share_issuer: true\n    fetch: {{ {fetch} }}\n"
        )
    };
    let config = format!(
        "refresh: {{ startup_grace: 1s }}\ntenants:\n{}{}{}",
        tenant("platform_roots", ""),
        tenant("private_ca", "ca_file: ca.pem, ca_only: true"),
        tenant(
            "proxied",
            &format!("ca_file: ca.pem, proxy: \"http://{proxy}\"")
        ),
    );
    let server = InProcess::start_with_files(&config, &[("ca.pem", ca.as_str())]).await;
    server.wait_serving().await;
    let mut client = server.client().await;
    let token = key.sign(&claims(&format!("https://{idp}"), AUDIENCE, now()));
    for id in ["private_ca", "proxied"] {
        let mut answer = judge(&mut client, &token, id).await;
        for _ in 0..100 {
            if answer.valid {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            answer = judge(&mut client, &token, id).await;
        }
        assert!(
            answer.valid,
            "{id}: {answer:?} {}",
            server.debug_tenant(id).await
        );
    }
    assert!(
        tunnels.load(Ordering::SeqCst) >= 1,
        "the proxied tenant did not use the proxy"
    );
    // Without the CA, the provider's certificate is not trusted.
    let error = server.last_error("platform_roots").await;
    assert!(
        error.to_ascii_lowercase().contains("certificate"),
        "{error}"
    );
}

#[test]
fn fetch_settings_are_checked_with_their_line() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("not-a-ca.pem"), "hello").expect("write");
    support::assert_config_refused(
        dir.path(),
        "fetch:\n  timeout: 0s\n  max_bytes: 10MiB\n  proxy: \"socks9://x\"\ntenants:\n  - id: a\n    issuers: [\"https://a.example\"]\n    audiences: [x]\n    jwks_uri: \"https://a.example/jwks\"\n    fetch: { ca_file: not-a-ca.pem }\n  - id: b\n    issuers: [\"https://b.example\"]\n    audiences: [x]\n    jwks_uri: \"https://b.example/jwks\"\n    fetch: { ca_only: true }\n",
        &[
            ":2: fetch.timeout: must be longer than 0s",
            ":3: fetch.max_bytes: must be a size from 1KiB to 512KiB",
            ":4: fetch.proxy: \"socks9://x\" is not an http:// or https:// proxy URL",
            "tenants[0].fetch.ca_file:",
            "tenants[1].fetch.ca_only: needs a ca_file",
        ],
    );
}
