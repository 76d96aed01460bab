//! A raw HTTP/1.1 upstream on loopback for the client's tests: each request gets the next
//! canned answer byte for byte (malformed ones included), over plain TCP or TLS with the test
//! CA in `tests/fixtures`, and the request heads are recorded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

pub struct Server {
    pub url: String,
    /// The request heads received, in order.
    pub heads: Arc<Mutex<Vec<String>>>,
}

fn acceptor() -> tokio_rustls::TlsAcceptor {
    let certs = CertificateDer::pem_file_iter(format!("{FIXTURES}/test-upstream.crt"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{FIXTURES}/test-upstream.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Answer each request with the next canned answer. An answer that ends in `CLOSE` is sent
/// without it and the connection is then closed; one that ends in `CLOSE_SOON`, closed 200 ms
/// later (after the client has pooled it).
pub async fn serve(answers: Vec<&'static [u8]>, tls: bool) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls { "https" } else { "http" };
    let url = format!("{scheme}://{}/v1", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    let seen = heads.clone();
    let tls = tls.then(acceptor);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (answers, seen, tls) = (answers.clone(), seen.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    None => answer(socket, answers, seen).await,
                    Some(tls) => {
                        if let Ok(socket) = tls.accept(socket).await {
                            answer(socket, answers, seen).await;
                        }
                    }
                }
            });
        }
    });
    Server { url, heads }
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut socket: S,
    answers: Arc<Mutex<VecDeque<&'static [u8]>>>,
    seen: Arc<Mutex<Vec<String>>>,
) {
    let mut buf = Vec::new();
    let mut piece = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match socket.read(&mut piece).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&piece[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_string)
            })
            .map_or(0, |v| v.trim().parse().unwrap());
        while buf.len() < head_end + length {
            let n = socket.read(&mut piece).await.unwrap();
            buf.extend_from_slice(&piece[..n]);
        }
        buf.drain(..head_end + length);
        seen.lock().unwrap().push(head);
        let Some(answer) = answers.lock().unwrap().pop_front() else {
            return;
        };
        if let Some(answer) = answer.strip_suffix(b"CLOSE_SOON") {
            socket.write_all(answer).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let _ = socket.shutdown().await;
            return;
        }
        match answer.strip_suffix(b"CLOSE") {
            Some(answer) => {
                socket.write_all(answer).await.unwrap();
                let _ = socket.shutdown().await;
                return;
            }
            None => socket.write_all(answer).await.unwrap(),
        }
    }
}
